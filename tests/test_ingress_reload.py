"""How the ingress takes a change (no Docker: a fake engine plays `nginx -t` and the reload):
a valid candidate costs one Docker exec (check and reload together), a refused one the
search for the Ingress that breaks it, and a change of endpoints alone none at all once the
NGINX master can be signalled (here it cannot be seen: the checked path runs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.config import LABEL_PREFIX, Paths
from mikro.controlplane import bootstrap
from mikro.net import network as network_module
from mikro.net.network import RELOAD_IF_VALID, Network

from .test_ingress import ep, path, svc

ING = BY_KIND["Ingress"]


class FakeDocker:
    """One running ingress container; `nginx -t` refuses any configuration naming `refuse`."""

    def __init__(self, root: Path, refuse: str) -> None:
        self.root, self.refuse = root / "ingress", refuse
        self.calls: list[str] = []

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        if labels.get("kind") != "ingress":
            return []
        self.calls.append("list")
        return [
            {
                "Id": "ingress-id",
                "Names": ["/c_ingress"],
                "State": "running",
                "Labels": {LABEL_PREFIX + "spec-hash": "h"},
            }
        ]

    def on_stale_network(self, container: dict[str, Any]) -> bool:
        return False

    def inspect(self, ident: str) -> dict[str, Any]:
        return {"State": {"Pid": 0}}  # its processes cannot be seen from here

    def exec(self, ident: str, argv: list[str]) -> tuple[int, bytes]:
        if argv == ["sh", "-c", RELOAD_IF_VALID]:
            self.calls.append("check+reload")
            candidate = self.root / "nginx.conf.next"
            if not candidate.exists():
                return 0, b""
            if self.refuse in candidate.read_text():
                return 1, b"nginx: [emerg] refused"
            candidate.replace(self.root / "nginx.conf")
            return 0, b""
        self.calls.append("check")
        text = (self.root / Path(argv[-1]).name).read_text()
        return (1, b"nginx: [emerg] refused") if self.refuse in text else (0, b"")


@pytest.fixture()
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Network, Registry, FakeDocker]:
    monkeypatch.setattr(network_module, "spec_hash", lambda spec: "h")
    reg = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(reg, "mikro", "mikro", "10.152.0.1")
    docker = FakeDocker(tmp_path, refuse="bad.example")
    (tmp_path / "ingress").mkdir()
    net = Network(reg, docker, Paths(tmp_path), "c", "c", "mikro/nginx:1.22", "127.0.0.1")  # type: ignore[arg-type]
    return net, reg, docker


def ingress(name: str, host: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"rules": [{"host": host, "http": {"paths": [path("/", "web", 80)]}}]}}


def test_a_valid_change_is_one_exec_and_a_refused_one_is_denied(setup: tuple[Network, Registry, FakeDocker]) -> None:
    net, reg, docker = setup
    services, endpoints = [svc("web", [{"port": 80}])], [ep("web", ["10.0.0.2"], 80)]
    reg.create(ING, "default", ingress("good", "good.example"))
    net.sync_ingress(services, endpoints, {})
    assert docker.calls == ["list", "check+reload"]
    conf = (net.paths.ingress / "nginx.conf").read_text()
    assert '"good.example"' in conf and "10.0.0.2:80" in conf
    assert net.routed["ingress"] == {"10.0.0.2"} and net.ingress_services == {"default/web"}

    docker.calls.clear()
    reg.create(ING, "default", ingress("bad", "bad.example"))
    net.sync_ingress(services, endpoints, {})
    # Refused: the offender is found by checks inside the container, the rest reloaded.
    assert docker.calls[0] == "check+reload" and "check" in docker.calls
    conf = (net.paths.ingress / "nginx.conf").read_text()
    assert '"good.example"' in conf and "bad.example" not in conf
    bad = reg.store.find(ING, "default", "bad")
    assert net._is_denied(bad)

    # Endpoints alone changed: same shape; without a visible master it takes the checked path.
    docker.calls.clear()
    net.sync_ingress(services, [ep("web", ["10.0.0.2", "10.0.0.3"], 80)], {})
    assert docker.calls == ["check+reload"]
    assert "10.0.0.3:80" in (net.paths.ingress / "nginx.conf").read_text()
    assert net.routed["ingress"] == {"10.0.0.2", "10.0.0.3"}

    # An event about the ingress container: it is listed again.
    net.on_docker_event({"status": "start", "Actor": {"Attributes": {LABEL_PREFIX + "kind": "ingress"}}})
    docker.calls.clear()
    net.sync_ingress(services, [ep("web", ["10.0.0.2", "10.0.0.3"], 80)], {})
    assert docker.calls == ["list"]

    # Nothing changed: no exec at all.
    docker.calls.clear()
    net.sync_ingress(services, [ep("web", ["10.0.0.2", "10.0.0.3"], 80)], {})
    assert docker.calls == []


def _signalled_ingress(
    setup: tuple[Network, Registry, FakeDocker],
    monkeypatch: pytest.MonkeyPatch,
    hup: Callable[[int], None],
    serving_timeout: float,
) -> list[dict[str, Any]]:
    """An ingress whose NGINX master (PID 10) this process sees and signals through `hup`,
    serving the Ingress "good" to Service web, synced once with one endpoint (10.0.0.2).
    Returns the Services."""
    from mikro.net import nginxproc

    net, reg, docker = setup
    monkeypatch.setattr(nginxproc, "hup", hup)
    monkeypatch.setattr(network_module, "SERVING_TIMEOUT", serving_timeout)
    docker.inspect = lambda ident: {"State": {"Pid": 10}}  # type: ignore[method-assign]
    services = [svc("web", [{"port": 80}])]
    reg.create(ING, "default", ingress("good", "good.example"))
    net.sync_ingress(services, [ep("web", ["10.0.0.2"], 80)], {})
    return services


def test_endpoints_alone_go_by_sighup_and_a_refusal_falls_back(
    setup: tuple[Network, Registry, FakeDocker], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mikro.net import nginxproc

    from .test_routing import fake_proc

    net, reg, docker = setup
    master = b"nginx: master process nginx -c /etc/mikro/nginx.conf"
    workers = iter(range(11, 100))
    state = {"root": tmp_path / "proc0", "n": 0}

    def show(worker: int) -> None:
        state["n"] += 1
        state["root"] = tmp_path / f"proc{state['n']}"
        fake_proc(state["root"], {10: (1, master), worker: (10, b"nginx: worker process")})
        monkeypatch.setattr(nginxproc, "PROC", state["root"])

    show(next(workers))
    hups: list[str] = []

    def hup(pid: int) -> None:  # the master takes the file on disk unless it is refused
        hups.append((net.paths.ingress / "nginx.conf").read_text())
        if docker.refuse not in hups[-1]:
            show(next(workers))

    services = _signalled_ingress(setup, monkeypatch, hup, serving_timeout=0.05)
    assert docker.calls == ["list", "check+reload"] and hups == []  # a new Ingress: checked

    # Endpoints alone: no Docker call at all (the container as last listed, the master's PID).
    docker.calls.clear()
    net.sync_ingress(services, [ep("web", ["10.0.0.2", "10.0.0.3"], 80)], {})
    assert docker.calls == [] and len(hups) == 1 and "10.0.0.3:80" in hups[0]
    assert net.routed["ingress"] == {"10.0.0.2", "10.0.0.3"}
    assert not (net.paths.ingress / "nginx.conf.next").exists()

    # NGINX keeps its workers (it refused what it read): the last good file is back and the
    # checked path runs, as for any other change.
    docker.refuse = "10.0.0.4"
    docker.calls.clear()
    net.sync_ingress(services, [ep("web", ["10.0.0.2", "10.0.0.4"], 80)], {})
    assert len(hups) == 2 and docker.calls[0] == "check+reload"
    assert "10.0.0.4" not in (net.paths.ingress / "nginx.conf").read_text()
    assert "10.0.0.4" not in net.routed["ingress"]


def test_a_change_during_nginx_s_wait_is_signalled_at_once_and_counts_once_settled(
    setup: tuple[Network, Registry, FakeDocker], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NGINX lets the workers of the configuration before accept for 100 ms after a reload. A
    change that comes meanwhile (the second replica ready 40 ms after the first) is signalled
    at once, not after that wait; until a reload settles, a pod counts as routed only where
    every accepting worker sends to it, and as reachable (a terminating pod stays up) where
    any does. Not twice in a row: the pass after an interrupted one waits its reload out."""
    from mikro.net import nginxproc

    from .test_routing import fake_proc

    net, reg, docker = setup
    master = b"nginx: master process nginx -c /etc/mikro/nginx.conf"
    workers: dict[int, bytes] = {11: b"nginx: worker process"}
    generation = iter(range(12, 100))
    roots = iter(range(100))

    def show() -> None:
        root = tmp_path / f"proc{next(roots)}"
        fake_proc(root, {10: (1, master), **{w: (10, title) for w, title in workers.items()}})
        monkeypatch.setattr(nginxproc, "PROC", root)

    show()
    hups: list[str] = []
    settle_on_hup = {"now": False}

    def hup(pid: int) -> None:  # new workers at once; the old ones keep accepting (NGINX's 100 ms)
        hups.append((net.paths.ingress / "nginx.conf").read_text())
        if settle_on_hup["now"]:
            for w in workers:
                workers[w] = b"nginx: worker process is shutting down"
        workers[next(generation)] = b"nginx: worker process"
        show()

    services = _signalled_ingress(setup, monkeypatch, hup, serving_timeout=0.3)
    assert net.routed["ingress"] == {"10.0.0.2"}

    # The first replica's change is signalled; the second one's arrives during the wait.
    net.wake_ingress.set()
    net.sync_ingress(services, [ep("web", ["10.0.0.2", "10.0.0.3"], 80)], {})
    assert len(hups) == 1 and "10.0.0.3:80" in hups[0]
    assert net.routed["ingress"] == {"10.0.0.2"}  # not yet what every worker runs
    assert net.ingress_pending is not None and net.is_routed("10.0.0.3") and net.is_routed("10.0.0.2")

    # The next pass signals the newer configuration at once, and waits (no second interruption).
    net.wake_ingress.set()
    settle_on_hup["now"] = True
    net.sync_ingress(services, [ep("web", ["10.0.0.3", "10.0.0.4"], 80)], {})
    assert len(hups) == 2 and "10.0.0.4:80" in hups[1] and "10.0.0.2:80" not in hups[1]
    assert net.routed["ingress"] == {"10.0.0.3", "10.0.0.4"} and net.ingress_pending is None
    assert not net.is_routed("10.0.0.2")  # every worker that sent to it is gone

    # An interrupted reload of the configuration that is then the newest counts once it settles.
    settle_on_hup["now"] = False
    net.wake_ingress.set()
    net.sync_ingress(services, [ep("web", ["10.0.0.5"], 80)], {})
    assert len(hups) == 3 and net.routed["ingress"] == set() and net.is_routed("10.0.0.3")
    for w in list(workers)[:-1]:
        workers[w] = b"nginx: worker process is shutting down"
    show()
    net.wake_ingress.clear()
    net.sync_ingress(services, [ep("web", ["10.0.0.5"], 80)], {})
    assert len(hups) == 3 and docker.calls.count("check+reload") == 1  # no signal, no exec
    assert net.routed["ingress"] == {"10.0.0.5"} and not net.is_routed("10.0.0.3")
