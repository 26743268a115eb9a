"""The headless Services' DNS aliases on the pods' infra containers (no Docker: a fake engine
with running infra containers): looked at when the headless Services change or an infra
container starts, not on every pass of the network loop (a list of every pod's containers
every 10 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mikro.api.registry import Registry
from mikro.api.store import Store
from mikro.config import LABEL_PREFIX, Paths
from mikro.controlplane import bootstrap
from mikro.node.docker_backend import DockerError
from mikro.node.podplan import INFRA, headless_key

L = LABEL_PREFIX


def infra(ident: str, app: str) -> dict[str, Any]:
    return {
        "Id": ident,
        "Names": [f"/{ident}"],
        "State": "running",
        "Labels": {L + "kind": "pod", L + "container": INFRA, L + "namespace": "default", L + "label.app": app},
    }


class FakeDocker:
    def __init__(self) -> None:
        self.infra = [infra("a", "db"), infra("b", "web")]
        self.lists = 0
        self.aliases: dict[str, list[str]] = {}
        self.refuse: set[str] = set()

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        assert labels == {"kind": "pod", "container": INFRA}
        self.lists += 1
        return list(self.infra)

    def inspect(self, ident: str) -> dict[str, Any]:
        return {"NetworkSettings": {"Networks": {"c": {"Aliases": []}}}}

    def set_aliases(self, ident: str, network: str, aliases: list[str]) -> None:
        if ident in self.refuse:
            raise DockerError("the engine is busy")
        self.aliases[ident] = aliases


def headless(name: str, app: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": "None", "selector": {"app": app}, "ports": [{"port": 5432}]},
    }


def plain(name: str, app: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"clusterIP": "10.152.0.9", "selector": {"app": app}}}


@pytest.fixture()
def net(tmp_path: Path) -> Any:
    from mikro.net.network import Network

    reg = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(reg, "mikro", "mikro", "10.152.0.1")
    return Network(reg, FakeDocker(), Paths(tmp_path), "c", "c", "mikro/nginx:1.22", "127.0.0.1")  # type: ignore[arg-type]


def start_event(ident: str) -> dict[str, Any]:
    return {"status": "start", "Actor": {"ID": ident, "Attributes": {L + "kind": "pod", L + "container": INFRA}}}


def test_without_headless_services_no_pod_is_listed(net: Any) -> None:
    for _ in range(3):
        net.sync_headless([plain("web", "web")])
    net.on_docker_event(start_event("c"))
    net.sync_headless([plain("web", "web")])
    assert net.docker.lists == 0


def test_a_headless_service_sets_aliases_once_then_only_a_change_looks_again(net: Any) -> None:
    services = [headless("db", "db"), plain("web", "web")]
    net.sync_headless(services)
    assert net.docker.lists == 1
    assert "db.default.svc.cluster.local" in net.docker.aliases["a"] and "b" not in net.docker.aliases
    net.sync_headless(services)
    net.sync_headless(services)
    assert net.docker.lists == 1  # nothing changed: no look
    net.docker.infra.append(infra("c", "db"))
    net.on_docker_event(start_event("c"))  # a new pod's infra container
    net.sync_headless(services)
    assert net.docker.lists == 2 and "db.default.svc.cluster.local" in net.docker.aliases["c"]
    net.sync_headless([*services, headless("web-h", "web")])  # another headless Service
    assert net.docker.lists == 3 and "web-h.default.svc.cluster.local" in net.docker.aliases["b"]
    net.sync_headless([plain("web", "web")])  # the headless ones gone: the aliases go too
    assert net.docker.lists == 4 and net.docker.aliases["a"] == [] and net.docker.aliases["b"] == []
    net.sync_headless([plain("web", "web")])
    assert net.docker.lists == 4


def test_a_failed_alias_change_is_tried_again_on_the_next_pass(net: Any) -> None:
    services = [headless("db", "db")]
    net.docker.refuse.add("a")
    net.sync_headless(services)
    assert "a" not in net.docker.aliases
    net.docker.refuse.clear()
    net.sync_headless(services)
    assert net.docker.lists == 2 and "db.default.svc.cluster.local" in net.docker.aliases["a"]


def test_headless_key_reads_only_what_the_aliases_depend_on() -> None:
    assert headless_key([plain("web", "web"), {"metadata": {"name": "x"}, "spec": {"clusterIP": "None"}}]) == ()
    one = headless_key([headless("db", "db"), plain("web", "web")])
    assert one == (("default", "db", (("app", "db"),)),)
    moved = headless("db", "db")
    moved["spec"]["ports"] = [{"port": 1}]
    assert headless_key([moved]) == one  # ports do not name pods
    assert headless_key([headless("db", "other")]) != one
