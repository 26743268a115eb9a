"""Deployment, ReplicaSet and Endpoints controllers as Kubernetes tests them: table-driven,
pass by pass, asserting the writes of each pass and the rollout's invariants while new pods
become Ready a round late."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mikro.api.resources import BY_KIND
from mikro.controllers import replicaset
from mikro.controllers.deployment import REVISION, rollout_limits
from tests.controller_kit import Cluster, created, deleted

POD, RS, DEPLOY, SVC, EP = (BY_KIND[k] for k in ("Pod", "ReplicaSet", "Deployment", "Service", "Endpoints"))


def deployment(replicas: int, image: str = "hello-ip:1", strategy: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080, "name": "http"}]}]
            },
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    return {"metadata": {"name": "web"}, "spec": spec}


def rolling(surge: Any, unavailable: Any) -> dict[str, Any]:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}


@pytest.fixture()
def c(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def settle(c: Cluster, rounds: int = 5) -> None:
    for _ in range(rounds):
        c.sync()
        c.reap()
        c.start_all()
    c.sync()


def set_image(c: Cluster, image: str) -> None:
    d = c.store.get(DEPLOY, "default", "web")
    template = copy.deepcopy(d["spec"]["template"])
    template["spec"]["containers"][0]["image"] = image
    c.patch("Deployment", "web", {"spec": {"template": template}})


def replicasets(c: Cluster) -> dict[str, dict[str, Any]]:
    """The ReplicaSets by the image of their template."""
    return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in c.store.list(RS, "default")[0]}


def available(c: Cluster) -> int:
    return sum(
        1
        for p in c.pods()
        if any(x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or [])
    )


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "first_new", "first_old"),
    [
        (4, 1, 1, 1, 3),
        (4, 0, 1, 0, 3),
        (4, 2, 0, 2, 4),
        (3, "25%", "25%", 1, 3),  # 25% of 3: surge rounds up to 1, unavailable down to 0
        (10, 3, 2, 3, 8),
        (2, "50%", "50%", 1, 1),
    ],
)
def test_rolling_update_pass_by_pass(
    c: Cluster, replicas: int, surge: Any, unavailable: Any, first_new: int, first_old: int
) -> None:
    c.reg.create(DEPLOY, "default", deployment(replicas, strategy=rolling(surge, unavailable)))
    settle(c)
    assert available(c) == replicas
    max_surge, max_unavailable = rollout_limits(c.store.get(DEPLOY, "default", "web"))
    late = {p["metadata"]["name"] for p in c.pods()}  # ready before the rollout
    set_image(c, "hello-ip:2")
    first = c.sync()
    rss = replicasets(c)
    new_name = rss["hello-ip:2"]["metadata"]["name"]
    assert created(first, "ReplicaSet") == [new_name]
    assert (rss["hello-ip:2"]["spec"]["replicas"], rss["hello-ip:1"]["spec"]["replicas"]) == (first_new, first_old)
    assert len(created(first)) == first_new and len(deleted(first)) == replicas - first_old
    # The pods of the last pass become Ready only after the next pass (a round late).
    for i in range(40):
        c.reap()
        for pod in c.pods():
            name = pod["metadata"]["name"]
            c.set_pod(name, ready=name in late)
            late.add(name)
        c.sync()
        live = c.pods()
        ready = available(c)
        assert ready >= replicas - max_unavailable, f"pass {i}: {ready} available < {replicas} - {max_unavailable}"
        assert len(live) <= replicas + max_surge, f"pass {i}: {len(live)} pods > {replicas} + {max_surge}"
        specs = sum(rs["spec"]["replicas"] for rs in c.store.list(RS, "default")[0])
        assert specs <= replicas + max_surge, f"pass {i}: ReplicaSets sized {specs}"
    assert {p["spec"]["containers"][0]["image"] for p in c.pods()} == {"hello-ip:2"}
    assert len(c.pods()) == replicas and available(c) == replicas
    rss = replicasets(c)
    assert (rss["hello-ip:1"]["spec"]["replicas"], rss["hello-ip:2"]["spec"]["replicas"]) == (0, replicas)
    status = c.store.get(DEPLOY, "default", "web")["status"]
    assert status["updatedReplicas"] == status["availableReplicas"] == replicas


def test_recreate_scales_old_to_zero_and_waits_for_its_pods(c: Cluster) -> None:
    c.reg.create(DEPLOY, "default", deployment(2, strategy={"type": "Recreate"}))
    settle(c)
    set_image(c, "hello-ip:2")
    first = c.sync()
    assert len(deleted(first)) == 2 and created(first) == []
    assert created(c.sync()) == []  # the old pods are still terminating
    c.reap()
    assert len(created(c.sync())) == 2


def test_available_condition_follows_availability(c: Cluster) -> None:
    c.reg.create(DEPLOY, "default", deployment(3))
    c.sync()
    c.start_all(ready=False)
    c.sync()
    conditions = {x["type"]: x for x in c.store.get(DEPLOY, "default", "web")["status"]["conditions"]}
    assert conditions["Available"]["status"] == "False"
    assert conditions["Available"]["reason"] == "MinimumReplicasUnavailable"
    assert conditions["Progressing"]["reason"] == "ReplicaSetUpdated"
    c.start_all(ready=True)
    c.clock.tick(5)
    c.sync()
    status = c.store.get(DEPLOY, "default", "web")["status"]
    conditions = {x["type"]: x for x in status["conditions"]}
    assert (
        conditions["Available"]["status"] == "True" and conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    )
    assert conditions["Available"]["lastTransitionTime"] == "2026-01-01T12:00:05Z"  # the clock passed in
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert status["availableReplicas"] == 3 and "unavailableReplicas" not in status


def test_rollback_bumps_the_old_replicaset_to_the_newest_revision(c: Cluster) -> None:
    c.reg.create(DEPLOY, "default", deployment(1))
    settle(c)
    set_image(c, "hello-ip:2")
    settle(c)
    set_image(c, "hello-ip:1")
    actions = c.sync()
    rss = replicasets(c)
    assert created(actions, "ReplicaSet") == []  # the first ReplicaSet is reused
    assert rss["hello-ip:1"]["metadata"]["annotations"][REVISION] == "3"
    assert rss["hello-ip:2"]["metadata"]["annotations"][REVISION] == "2"
    assert c.store.get(DEPLOY, "default", "web")["metadata"]["annotations"][REVISION] == "3"


def pod(name: str, created_at: str, ready: bool, node: str | None = "mikro") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created_at},
        "spec": {"nodeName": node} if node else {},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


@pytest.mark.parametrize(
    ("pods", "count", "expected"),
    [
        # unscheduled first, then not ready, then the youngest
        (
            [pod("old", "2026-01-01T10:00:00Z", True), pod("pending", "2026-01-01T09:00:00Z", False, node=None)],
            1,
            ["pending"],
        ),
        (
            [pod("ready", "2026-01-01T10:00:00Z", True), pod("unready", "2026-01-01T09:00:00Z", False)],
            1,
            ["unready"],
        ),
        (
            [
                pod("a", "2026-01-01T09:00:00Z", True),
                pod("b", "2026-01-01T11:00:00Z", True),
                pod("c", "2026-01-01T10:00:00Z", True),
            ],
            2,
            ["b", "c"],
        ),
        ([pod("a", "2026-01-01T09:00:00Z", True)], 0, []),
    ],
)
def test_replicaset_scale_down_order(pods: list[dict[str, Any]], count: int, expected: list[str]) -> None:
    assert [p["metadata"]["name"] for p in replicaset.pods_to_delete(pods, count)] == expected


def test_replicaset_scale_down_deletes_the_unready_pod(c: Cluster) -> None:
    c.reg.create(DEPLOY, "default", deployment(3))
    settle(c)
    victim = c.pods()[1]["metadata"]["name"]
    c.set_pod(victim, ready=False)
    c.sync()
    c.patch("Deployment", "web", {"spec": {"replicas": 2}})
    assert deleted(c.sync()) == [victim]


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}], **spec},
    }


def test_endpoints_per_namespace_with_not_ready_addresses(c: Cluster) -> None:
    c.reg.create(BY_KIND["Namespace"], "", {"metadata": {"name": "other"}})
    c.reg.create(DEPLOY, "default", deployment(2))
    c.reg.create(DEPLOY, "other", deployment(1))
    c.reg.create(SVC, "default", service())
    c.sync()
    c.start_all()
    c.start_all(ns="other")
    names = sorted(p["metadata"]["name"] for p in c.pods())
    c.set_pod(names[1], ready=False)
    c.sync()
    ep = c.store.get(EP, "default", "web")
    [subset] = ep["subsets"]
    ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in c.pods()}
    assert [a["ip"] for a in subset["addresses"]] == [ips[names[0]]]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == [ips[names[1]]]
    assert subset["addresses"][0]["targetRef"]["name"] == names[0]
    assert subset["ports"] == [{"port": 8080, "protocol": "TCP"}]
    other_ips = {p["status"]["podIP"] for p in c.pods("other")}
    everywhere = {a["ip"] for a in subset.get("addresses", []) + subset.get("notReadyAddresses", [])}
    assert other_ips and not other_ips & everywhere


def test_endpoints_without_ready_pods_have_no_addresses(c: Cluster) -> None:
    c.reg.create(DEPLOY, "default", deployment(1))
    c.reg.create(SVC, "default", service())
    c.sync()
    c.start_all(ready=False)
    c.sync()
    [subset] = c.store.get(EP, "default", "web")["subsets"]
    assert "addresses" not in subset and len(subset["notReadyAddresses"]) == 1


def test_endpoints_hostname_for_pods_of_the_subdomain(c: Cluster) -> None:
    c.reg.create(SVC, "default", service(clusterIP="None"))
    body = {
        "metadata": {"name": "p", "labels": {"app": "web"}},
        "spec": {
            "hostname": "p",
            "subdomain": "web",
            "containers": [{"name": "web", "image": "hello-ip:1", "ports": [{"containerPort": 8080, "name": "http"}]}],
        },
    }
    c.reg.create(POD, "default", body)
    c.set_pod("p")
    c.sync()
    [subset] = c.store.get(EP, "default", "web")["subsets"]
    assert subset["addresses"][0]["hostname"] == "p"
