"""From Pods to container specs (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from mikro.api.defaults import image_pull_policy
from mikro.node.podplan import (
    INFRA_COMMAND,
    MissingReference,
    PodContext,
    app_spec,
    back_off,
    dns_search,
    exited_at,
    infra_spec,
    requests_of,
    resolve_env,
    should_restart,
)

CTX = PodContext("mikro", "mikro", "mikro/pause:1", "mikro", "10.152.0.1", "/tmp/mikro")
POD: dict[str, Any] = {
    "metadata": {"name": "web-abc", "namespace": "shop", "uid": "1234-5678-9abc", "labels": {"app": "web"}},
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "hello-ip:1",
                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}},
                "ports": [{"containerPort": 8080, "hostPort": 9090}],
            }
        ]
    },
}


@pytest.mark.parametrize(
    "image,policy",
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("localhost:5000/app", "Always"),
        ("localhost:5000/app:1", "IfNotPresent"),
        ("app@sha256:abc", "IfNotPresent"),
    ],
)
def test_default_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def test_infra_holds_hostname_dns_and_host_ports() -> None:
    spec = infra_spec(CTX, POD, [])
    assert spec.hostname == "web-abc" and spec.network == "mikro"
    assert spec.dns_search == dns_search("shop") == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert spec.ports == {"8080/tcp": ("127.0.0.1", 9090)}
    assert spec.labels["io.mikro/uid"] == "1234-5678-9abc" and spec.labels["io.mikro/container"] == "POD"
    assert spec.command == INFRA_COMMAND  # it announces its address (tests/test_e2e_announce.py)


def test_app_container_shares_the_infra_network_and_gets_limits() -> None:
    spec = app_spec(CTX, POD, POD["spec"]["containers"][0], "infra-id", 2, {"A": "1"}, {})
    assert spec.network_mode == "container:infra-id" and spec.hostname is None
    assert spec.mem_limit == 64 * 2**20 and spec.nano_cpus == 500_000_000
    assert spec.name.endswith("_web_2") and spec.labels["io.mikro/attempt"] == "2"
    again = app_spec(CTX, POD, POD["spec"]["containers"][0], "infra-id", 3, {"A": "1"}, {})
    assert again.labels["io.mikro/spec-hash"] == spec.labels["io.mikro/spec-hash"]


def test_env_from_fields_and_references() -> None:
    ctr = {
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
            {"name": "GREETING", "value": "hi $(POD)"},
        ]
    }

    def lookup(kind: str, name: str, key: str) -> str | None:
        return "sesame" if (kind, name, key) == ("Secret", "s", "password") else None

    env = resolve_env(POD, ctr, "10.152.0.7", "10.152.0.1", lookup)
    assert env == {"POD": "web-abc", "NS": "shop", "IP": "10.152.0.7", "PASS": "sesame", "GREETING": "hi web-abc"}
    with pytest.raises(MissingReference):
        resolve_env(
            POD, {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]}, "", "", lookup
        )


def test_back_off_and_restart_policy() -> None:
    assert [back_off(n) for n in (1, 2, 3, 6, 10)] == [10, 20, 40, 300, 300]
    assert should_restart("Always", 0) and should_restart("OnFailure", 1)
    assert not should_restart("OnFailure", 0) and not should_restart("Never", 1)


@pytest.mark.parametrize(
    ("wall_now", "finished", "due"),
    [
        (1_000_000.0, 1_000_000.0 - 4, 506.0),  # exited 4 s ago: 6 s of its 10 s back-off are left
        (1_000_000.0, 1_000_000.0 + 3600, 510.0),  # the wall clock was set back an hour: 10 s, not 1 h
        (1_000_000.0, 1_000_000.0 - 3600, 500.0),  # a laptop slept an hour since: due now, not negative
    ],
)
def test_back_off_runs_on_the_monotonic_clock(wall_now: float, finished: float, due: float) -> None:
    assert exited_at(500.0, wall_now, finished, 10.0) + 10.0 == due


def test_requests_for_scheduling() -> None:
    assert requests_of(POD) == (0.25, 64 * 2**20)
