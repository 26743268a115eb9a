"""Real kubectl against an in-process mikro API server (HTTPS on 127.0.0.1, no Docker).

Used by tests/test_kubeproto_kubectl.py and by tests/fixtures/protobuf/capture.py, which records
the protobuf request bodies kubectl sends so that the codec is tested against real clients' bytes
even on a machine without kubectl.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from mikro.api import pki
from mikro.api.registry import Registry
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.controlplane import bootstrap

TOKEN = "protobuf-test-token"
# The Google Cloud SDK's /usr/bin/kubectl is a dispatcher; the real 1.32 binary sits beside it.
KUBECTL_CANDIDATES = ("/usr/lib/google-cloud-sdk/bin/kubectl.1.32", "kubectl")

# kubectl's generators, each sending its kind as protobuf: name -> arguments.
GENERATORS: dict[str, list[str]] = {
    "configmap": ["create", "configmap", "cfg", "--from-literal=a=b", "--from-literal=greeting=hello world"],
    "secret-generic": ["create", "secret", "generic", "sec", "--from-literal=k=v", "--from-literal=empty="],
    "secret-docker-registry": [
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server=registry.local:5000",
        "--docker-username=u",
        "--docker-password=p",
    ],
    "namespace": ["create", "namespace", "team-a"],
    "deployment": ["create", "deployment", "web", "--image=hello-ip:1", "--port=8080", "--replicas=2"],
    "deployment-zero": ["create", "deployment", "idle", "--image=hello-ip:1", "--replicas=0"],
    "job": ["create", "job", "once", "--image=hello-ip:1", "--", "sh", "-c", "echo hi"],
    "cronjob": ["create", "cronjob", "nightly", "--image=hello-ip:1", "--schedule=0 3 * * *"],
    "service-clusterip": ["create", "service", "clusterip", "svc", "--tcp=80:8080"],
    "service-nodeport": ["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"],
    "serviceaccount": ["create", "serviceaccount", "robot"],
    "ingress": ["create", "ingress", "ing", "--rule=demo.local/*=svc:80", "--class=nginx"],
}


def kubectl_binary() -> str:
    for candidate in KUBECTL_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise RuntimeError("no kubectl binary found")


class Cluster:
    def __init__(self, port: int, kubeconfig: Path) -> None:
        self.port = port
        self.kubeconfig = kubeconfig

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        proc = subprocess.run([kubectl_binary(), *args], env=env, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc


@contextlib.contextmanager
def in_process_cluster(tmp: Path) -> Iterator[Cluster]:
    registry = Registry(Store(tmp / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    ca, cert, key = pki.ensure(tmp / "pki")
    server = serve(registry, TOKEN, None, tls=(str(cert), str(key)))
    server.ready.set()
    port = server.server_address[1]
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{port}\n"
        f"    certificate-authority: {ca}\n"
        f"users:\n- name: t\n  user:\n    token: {TOKEN}\n"
        "contexts:\n- name: t\n  context:\n    cluster: t\n    user: t\n    namespace: default\n"
        "current-context: t\n"
    )
    try:
        yield Cluster(port, kubeconfig)
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
