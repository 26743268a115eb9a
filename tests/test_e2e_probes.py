"""Probes against real Docker: HTTPS readiness probes that speak TLS and read the status code,
and startup probes that hold the other probes back or restart a container that never starts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.certs import self_signed
from tests.conftest import Mikro, wait_for

pytestmark = pytest.mark.docker

NGINX_CONF = """server {
    listen 8443 ssl;
    ssl_certificate /etc/tls/tls.crt;
    ssl_certificate_key /etc/tls/tls.key;
    location = /healthz { return 200 "ok\\n"; }
    location / { return 404; }
}
"""


def tls_pod(name: str, path: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "mikro/nginx:1.22",
                    "readinessProbe": {
                        "httpGet": {"scheme": "HTTPS", "port": 8443, "path": path},
                        "periodSeconds": 1,
                        "failureThreshold": 1,
                    },
                    "volumeMounts": [
                        {"name": "conf", "mountPath": "/etc/nginx/conf.d"},
                        {"name": "tls", "mountPath": "/etc/tls"},
                    ],
                }
            ],
            "volumes": [
                {"name": "conf", "configMap": {"name": "tls-conf"}},
                {"name": "tls", "secret": {"secretName": "tls-cert"}},
            ],
        },
    }


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or [])


def events_of(mikro: Mikro, name: str) -> list[dict[str, Any]]:
    return [e for e in mikro.json("events")["items"] if e["involvedObject"]["name"] == name]


def test_https_probe_speaks_tls_and_checks_the_status(mikro: Mikro) -> None:
    cert_pem, key_pem = self_signed("probe.test")
    cert, key = cert_pem.decode(), key_pem.decode()
    objects = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tls-conf"}, "data": {"probe.conf": NGINX_CONF}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tls-cert"},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": cert, "tls.key": key},
        },
        tls_pod("tls-ok", "/healthz"),
        tls_pod("tls-404", "/missing"),
    ]
    mikro.run("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))
    wait_for(lambda: ready(mikro.json("pod", "tls-ok")), timeout=90, what="the HTTPS-probed pod to be ready")
    # The other pod serves TLS on the same port, but its probe path answers 404: a probe that
    # only checked the port would call it ready. (A probe that runs before NGINX listens fails
    # with "connection refused" first, as the kubelet's does: that is another event.)
    failed = wait_for(
        lambda: [e for e in events_of(mikro, "tls-404") if e["reason"] == "Unhealthy" and "404" in e["message"]],
        timeout=60,
        what="the 404 readiness failure",
    )
    assert failed[0]["message"] == "Readiness probe failed: HTTP probe failed with statuscode: 404"
    pod = mikro.json("pod", "tls-404")
    assert pod["status"]["phase"] == "Running" and not ready(pod)
    mikro.kubectl("delete", "pod", "tls-ok", "tls-404")


def test_startup_probe_holds_readiness_and_restarts_a_container_that_never_starts(mikro: Mikro) -> None:
    def pod(name: str, command: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "main",
                        "image": "hello-ip:1",
                        "command": ["sh", "-c", command],
                        "startupProbe": {
                            "exec": {"command": ["test", "-f", "/up"]},
                            "periodSeconds": 1,
                            "failureThreshold": 2,
                        },
                        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
                    }
                ],
            },
        }

    docs = [pod("starts", "touch /up; sleep 3600"), pod("never", "sleep 3600")]
    mikro.run("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
    wait_for(lambda: ready(mikro.json("pod", "starts")), timeout=60, what="the started pod to be ready")
    assert mikro.json("pod", "starts")["status"]["containerStatuses"][0]["started"] is True
    wait_for(
        lambda: any("failed startup probe, will be restarted" in e["message"] for e in events_of(mikro, "never")),
        timeout=60,
        what="the startup probe to give up",
    )
    unhealthy = [e for e in events_of(mikro, "never") if e["reason"] == "Unhealthy"]
    assert unhealthy and unhealthy[0]["message"].startswith("Startup probe failed")
    wait_for(
        lambda: mikro.json("pod", "never")["status"]["containerStatuses"][0]["restartCount"] >= 1,
        timeout=60,
        what="the container to be restarted",
    )
    never = mikro.json("pod", "never")
    assert not ready(never) and never["status"]["containerStatuses"][0]["started"] is False
    mikro.kubectl("delete", "pod", "starts", "never")
