"""The pods/eviction subresource (no Docker): PodDisruptionBudgets honoured as kube-apiserver
honours them, over real HTTP, and the verdicts themselves (pure)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mikro.api import eviction, policy
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.controlplane import bootstrap
from mikro.errors import ApiError

TOKEN = "test-token"
POD, PDB = BY_KIND["Pod"], BY_KIND["PodDisruptionBudget"]


def pod(name: str, ready: bool = True, phase: str = "Running", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "hello-ip:1"}]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def budget(name: str = "web", healthy: int = 2, expected: int = 2, **spec: Any) -> dict[str, Any]:
    pdb = {
        "metadata": {"name": name, "namespace": "default", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
    }
    pdb["status"] = policy.pdb_status(pdb, healthy, expected, 1)
    return pdb


# -- the verdicts (pure) --------------------------------------------------------------------


def test_no_budget_means_a_plain_delete() -> None:
    assert eviction.verdict(pod("a"), []) is None
    assert eviction.verdict(pod("a"), [budget(selector={"matchLabels": {"app": "db"}})]) is None


def test_a_budget_with_room_is_spent_by_one() -> None:
    spent = eviction.verdict(pod("a"), [budget(minAvailable=1)])
    assert spent is not None and spent["status"]["disruptionsAllowed"] == 0
    assert spent["status"]["conditions"][0]["status"] == "False"


def test_a_budget_without_room_answers_429_with_kubernetes_words() -> None:
    with pytest.raises(ApiError) as err:
        eviction.verdict(pod("a"), [budget(minAvailable=2)])
    status = err.value.status()
    assert status["code"] == 429 and status["reason"] == "TooManyRequests"
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert status["details"]["causes"] == [
        {"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}
    ]


def test_pods_a_budget_does_not_protect() -> None:
    full = [budget(minAvailable=2)]
    for phase in ("Pending", "Succeeded", "Failed"):
        assert eviction.verdict(pod("a", phase=phase), full) is None
    going = pod("a")
    going["metadata"]["deletionTimestamp"] = "2026-11-27T12:00:00Z"
    assert eviction.verdict(going, full) is None


def test_an_unready_pod_goes_while_the_budget_is_met() -> None:
    met = budget(healthy=2, expected=3, minAvailable=2)  # 2 healthy of 3, 2 wanted: no room
    assert met["status"]["disruptionsAllowed"] == 0
    assert eviction.verdict(pod("c", ready=False), [met]) is None
    short = budget(healthy=1, expected=3, minAvailable=2)
    with pytest.raises(ApiError):
        eviction.verdict(pod("c", ready=False), [short])
    assert (
        eviction.verdict(
            pod("c", ready=False),
            [budget(healthy=1, expected=3, minAvailable=2, unhealthyPodEvictionPolicy="AlwaysAllow")],
        )
        is None
    )


def test_two_budgets_and_a_budget_not_yet_observed() -> None:
    with pytest.raises(ApiError) as err:
        eviction.verdict(pod("a"), [budget("one", minAvailable=1), budget("two", minAvailable=1)])
    assert err.value.code == 500 and "more than one PodDisruptionBudget" in err.value.message
    stale = budget(minAvailable=1)
    stale["metadata"]["generation"] = 2
    with pytest.raises(ApiError) as err:
        eviction.verdict(pod("a"), [stale])
    assert err.value.code == 429 and "is still being processed by the server" in json.dumps(err.value.details)


def test_the_body_is_checked() -> None:
    assert eviction.check_body({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "a"}}, "a") == {}
    with pytest.raises(ApiError, match="name in URL does not match name in Eviction object"):
        eviction.check_body({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "b"}}, "a")
    with pytest.raises(ApiError):
        eviction.check_body({"apiVersion": "v1", "kind": "Pod"}, "a")


# -- over HTTP ------------------------------------------------------------------------------


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[tuple[Registry, int]]:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    server = serve(registry, TOKEN, None)
    server.ready.set()
    yield registry, server.server_address[1]
    server.stopping.set()
    server.shutdown()


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(
        method, path, body=data, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    )
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, json.loads(raw) if raw else None


def evict(port: int, name: str) -> tuple[int, Any]:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}}
    return request(port, "POST", f"/api/v1/namespaces/default/pods/{name}/eviction", body)


def seed(registry: Registry, names: list[str], **spec: Any) -> None:
    for name in names:
        created = registry.create(POD, "default", {k: v for k, v in pod(name).items() if k != "status"})
        created["status"] = pod(name)["status"]
        registry.store.update(POD, created, status_only=True)
    pdb = registry.create(
        PDB, "default", {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}
    )
    pdb["status"] = policy.pdb_status(pdb, len(names), len(names), 1)
    registry.store.update(PDB, pdb, status_only=True)


def test_discovery_offers_eviction_as_kubectl_drain_looks_for_it(cluster: tuple[Registry, int]) -> None:
    _, port = cluster
    resources = {r["name"]: r for r in request(port, "GET", "/api/v1")[1]["resources"]}
    entry = resources["pods/eviction"]
    assert (entry["group"], entry["version"], entry["kind"], entry["verbs"]) == ("policy", "v1", "Eviction", ["create"])


def test_eviction_spends_the_budget_then_refuses(cluster: tuple[Registry, int]) -> None:
    registry, port = cluster
    seed(registry, ["a", "b", "c"], minAvailable=2)
    code, body = evict(port, "a")
    assert (code, body["status"]) == (201, "Success")
    assert registry.store.get(POD, "default", "a")["metadata"].get("deletionTimestamp")
    assert registry.store.get(PDB, "default", "web")["status"]["disruptionsAllowed"] == 0
    # The controller has not recounted yet: the spent budget alone refuses the next one.
    code, body = evict(port, "b")
    assert code == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert registry.store.get(POD, "default", "b")["metadata"].get("deletionTimestamp") is None


def test_dry_run_eviction_spends_nothing(cluster: tuple[Registry, int]) -> None:
    registry, port = cluster
    seed(registry, ["a", "b"], maxUnavailable=1)
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "a"}}
    code, _ = request(port, "POST", "/api/v1/namespaces/default/pods/a/eviction?dryRun=All", body)
    assert code == 201
    assert registry.store.get(POD, "default", "a")["metadata"].get("deletionTimestamp") is None
    assert registry.store.get(PDB, "default", "web")["status"]["disruptionsAllowed"] == 1


def test_eviction_of_a_missing_pod_and_a_mismatched_name(cluster: tuple[Registry, int]) -> None:
    _, port = cluster
    code, body = evict(port, "ghost")
    assert code == 404 and body["message"] == 'pods "ghost" not found'
    code, body = request(
        port,
        "POST",
        "/api/v1/namespaces/default/pods/ghost/eviction",
        {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}},
    )
    assert code == 400 and body["message"] == "name in URL does not match name in Eviction object"


def test_the_live_pods_bound_a_budget_the_controller_has_not_recounted() -> None:
    # the status still says 2 healthy and one disruption allowed; one pod has just gone unready
    stale = budget(healthy=2, expected=2, minAvailable=1)
    pods = [pod("a"), pod("b", ready=False)]
    (live,) = eviction.with_live_counts([stale], pods)
    assert (live["status"]["currentHealthy"], live["status"]["disruptionsAllowed"]) == (1, 0)
    with pytest.raises(ApiError) as err:
        eviction.verdict(pods[0], [live])
    assert err.value.code == 429
    # the unready one may go (IfHealthyBudget): the healthy one still meets the budget
    assert eviction.verdict(pods[1], [live]) is None
