"""Which pods traffic reaches (the io.mikro/Routed condition), what `apply --wait` waits for,
and reading an NGINX master's workers from /proc. Pure; no Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mikro.cli.routes import unrouted
from mikro.net import nginxproc
from mikro.net.network import _plain_endpoint, _stand_in_endpoints
from mikro.net.routing import ROUTED, carriers, is_routed, pods_routed, selected, with_condition


def endpoints(name: str, ready: dict[str, str], not_ready: dict[str, str] | None = None) -> dict[str, Any]:
    def addr(pod: str, ip: str) -> dict[str, Any]:
        return {"ip": ip, "targetRef": {"kind": "Pod", "namespace": "default", "name": pod, "uid": "u-" + pod}}

    subset: dict[str, Any] = {"ports": [{"port": 8080, "protocol": "TCP"}]}
    if ready:
        subset["addresses"] = [addr(p, ip) for p, ip in ready.items()]
    if not_ready:
        subset["notReadyAddresses"] = [addr(p, ip) for p, ip in not_ready.items()]
    return {"metadata": {"namespace": "default", "name": name}, "subsets": [subset]}


def pod(name: str, labels: dict[str, str], ready: bool = True, routed: str | None = None) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if routed is not None:
        conditions.append({"type": ROUTED, "status": routed})
    return {"metadata": {"namespace": "default", "name": name, "labels": labels}, "status": {"conditions": conditions}}


def service(name: str, cluster_ip: str = "10.0.1.1") -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name}, "spec": {"clusterIP": cluster_ip}}


def test_what_each_configuration_must_carry() -> None:
    services = [service("web"), service("db", "None"), service("admin")]
    assert carriers(services, None) == {"default/web": {"default/web"}, "default/admin": {"default/admin"}}
    assert carriers(services, {"default/web"})["ingress"] == {"default/web"}


def test_a_pod_is_routed_once_every_configuration_meant_to_carry_it_does() -> None:
    eps = [endpoints("web", {"a": "10.0.0.3", "b": "10.0.0.4"})]
    carried = carriers([service("web")], {"default/web"})
    # The proxy runs both, the ingress only the first: b is ready, not yet routed.
    running = {"default/web": {"10.0.0.3", "10.0.0.4"}, "ingress": {"10.0.0.3"}}
    assert pods_routed(eps, carried, running) == {("default", "a", "u-a"): True, ("default", "b", "u-b"): False}
    running["ingress"].add("10.0.0.4")
    assert pods_routed(eps, carried, running) == {("default", "a", "u-a"): True, ("default", "b", "u-b"): True}
    # A proxy that has not run a pass since its Service appeared carries nothing yet.
    assert pods_routed(eps, carried, {"ingress": {"10.0.0.3", "10.0.0.4"}})[("default", "a", "u-a")] is False


def test_not_ready_addresses_and_a_second_service_count() -> None:
    eps = [endpoints("web", {"a": "10.0.0.3"}, {"b": "10.0.0.4"}), endpoints("admin", {"a": "10.0.0.3"})]
    carried = carriers([service("web"), service("admin")], None)
    running = {"default/web": {"10.0.0.3"}, "default/admin": set()}
    assert pods_routed(eps, carried, running) == {("default", "a", "u-a"): False, ("default", "b", "u-b"): False}
    running["default/admin"] = {"10.0.0.3"}
    assert pods_routed(eps, carried, running)[("default", "a", "u-a")] is True


def test_a_headless_service_routes_by_dns_and_holds_nothing() -> None:
    eps = [endpoints("db", {"a": "10.0.0.3"})]
    assert pods_routed(eps, carriers([service("db", "None")], None), {}) == {("default", "a", "u-a"): True}


def test_addresses_without_a_pod_are_not_reported() -> None:
    eps = [
        {"metadata": {"namespace": "default", "name": "kubernetes"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]}
    ]
    assert pods_routed(eps, carriers([service("kubernetes")], None), {}) == {}


def test_the_condition_is_written_only_when_it_changes() -> None:
    p = pod("a", {"app": "web"})
    assert with_condition(p, False, "2026-01-01T00:00:00Z") is None  # never routed: nothing to say
    status = with_condition(p, True, "2026-01-01T00:00:00Z")
    assert status is not None
    assert status["conditions"][0]["type"] == "Ready"  # the kubelet's conditions stay
    assert status["conditions"][-1] == {
        "type": ROUTED,
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    p["status"] = status
    assert is_routed(p)
    assert with_condition(p, True, "2026-01-01T00:00:05Z") is None
    off = with_condition(p, False, "2026-01-01T00:00:09Z")
    assert off is not None and [c["status"] for c in off["conditions"] if c["type"] == ROUTED] == ["False"]
    assert len([c for c in off["conditions"] if c["type"] == ROUTED]) == 1


def test_apply_wait_waits_for_ready_selected_pods_of_what_was_applied() -> None:
    deploy = {"kind": "Deployment", "metadata": {"namespace": "default", "name": "web"},
              "spec": {"selector": {"matchLabels": {"app": "web"}}}}  # fmt: skip
    services = [{"metadata": {"namespace": "default", "name": "web"}, "spec": {"selector": {"app": "web"}}}]
    pods = [
        pod("web-1", {"app": "web"}, routed="True"),
        pod("web-2", {"app": "web"}),  # ready, not routed yet
        pod("web-3", {"app": "web"}, ready=False),  # not ready: no traffic expected
        pod("other", {"app": "other"}),  # not applied
    ]
    assert unrouted(pods, services, [deploy]) == ["web-2"]
    assert unrouted(pods, [], [deploy]) == []  # no Service selects them: nothing routes to them
    pods[1] = pod("web-2", {"app": "web"}, routed="True")
    assert unrouted(pods, services, [deploy]) == []
    lone = {"kind": "Pod", "metadata": {"namespace": "default", "name": "other"}}
    assert unrouted(pods, services, [lone]) == []
    assert selected(pods[0], services) and not selected(pods[3], services)


def test_a_pod_without_the_named_target_port_is_not_waited_for() -> None:
    named = [{"metadata": {"namespace": "default", "name": "web"},
              "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}]  # fmt: skip
    p = pod("web-1", {"app": "web"})
    assert not selected(p, named)  # the Endpoints controller leaves it out too
    p["spec"] = {"containers": [{"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}]}
    assert selected(p, named)


def test_plain_endpoints_are_what_a_sighup_may_take_without_a_check() -> None:
    assert _plain_endpoint("10.152.0.3:8080")
    assert not _plain_endpoint("2001:db8::1:8080")
    assert not _plain_endpoint("10.152.0.3")
    assert not _plain_endpoint("example.com:80")


def test_stand_in_endpoints_cover_every_port_of_every_service() -> None:
    services = [
        {"metadata": {"namespace": "n", "name": "s"}, "spec": {"ports": [{"name": "http", "port": 80}, {"port": 81}]}}
    ]
    (ep,) = _stand_in_endpoints(services)
    assert ep["metadata"] == {"namespace": "n", "name": "s"}
    assert [p["name"] for p in ep["subsets"][0]["ports"]] == ["http", ""]


def fake_proc(root: Path, procs: dict[int, tuple[int, bytes]]) -> None:
    """pid -> (parent, title) as /proc shows them."""
    for pid, (parent, title) in procs.items():
        d = root / str(pid)
        (d / "task" / str(pid)).mkdir(parents=True)
        (d / "cmdline").write_bytes(title + b"\0")
        (d / "stat").write_text(f"{pid} (nginx) S {parent} 1 1")
        kids = " ".join(str(p) for p, (pp, _) in procs.items() if pp == pid)
        (d / "task" / str(pid) / "children").write_text(kids + (" " if kids else ""))


def test_a_reload_serves_once_only_new_workers_accept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nginxproc, "PROC", tmp_path / "before")
    master = b"nginx: master process nginx -c /etc/mikro/nginx.conf -g daemon off;"
    fake_proc(tmp_path / "before", {10: (1, master), 11: (10, b"nginx: worker process")})
    assert nginxproc.accepting_workers(10) == {11}
    assert nginxproc.accepting_workers(11) is None  # not a master
    assert not nginxproc.wait_serving(10, {11}, timeout=0.01)  # no new worker: not applied
    # After SIGHUP: the old worker shuts down, a new one accepts.
    fake_proc(tmp_path / "after", {10: (1, master), 11: (10, b"nginx: worker process is shutting down"), 12: (10, b"nginx: worker process")})  # fmt: skip
    monkeypatch.setattr(nginxproc, "PROC", tmp_path / "after")
    assert nginxproc.accepting_workers(10) == {12}
    assert nginxproc.wait_serving(10, {11}, timeout=0.01)
    assert nginxproc.wait_started(10, timeout=0.01)
    assert not nginxproc.wait_started(99, timeout=0.01)  # gone
