"""Controllers over the store alone (no Docker): the pod runtime's part is played by hand,
marking pods ready, so that each step of a rollout can be checked."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.controllers.helpers import template_hash
from mikro.controllers.manager import Controllers
from mikro.controlplane import bootstrap

POD, RS, DEPLOY, EP = BY_KIND["Pod"], BY_KIND["ReplicaSet"], BY_KIND["Deployment"], BY_KIND["Endpoints"]


def deployment(replicas: int, image: str = "hello-ip:1", **strategy: Any) -> dict[str, Any]:
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
    if strategy:
        # maxSurge/maxUnavailable belong under strategy.rollingUpdate (misplaced, they are ignored)
        kind = strategy.pop("type", "RollingUpdate")
        spec["strategy"] = {"type": kind, **({"rollingUpdate": strategy} if strategy else {})}
    return {"metadata": {"name": "web"}, "spec": spec}


@pytest.fixture()
def ctl(tmp_path: Path) -> Controllers:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    return Controllers(registry)


def pods(ctl: Controllers) -> list[dict[str, Any]]:
    return [p for p in ctl.store.list(POD, "default")[0] if not p["metadata"].get("deletionTimestamp")]


def run_kubelet(ctl: Controllers, ready: bool = True) -> None:
    """Play the pod runtime: running and ready pods get an IP; deleted pods go away."""
    for i, pod in enumerate(ctl.store.list(POD, "default")[0]):
        if pod["metadata"].get("deletionTimestamp"):
            ctl.store.delete(POD, "default", pod["metadata"]["name"])
            continue
        status = {
            "phase": "Running",
            "podIP": f"10.152.0.{i + 10}",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        }
        if pod.get("status") != status and (ready or not pod.get("status", {}).get("podIP")):
            pod["status"] = status
            ctl.store.update(POD, pod, status_only=True)


def settle(ctl: Controllers, rounds: int = 6, ready: bool = True) -> None:
    for _ in range(rounds):
        ctl.sync_all()
        run_kubelet(ctl, ready)
    ctl.sync_all()


def test_deployment_makes_replicaset_and_pods_with_kubernetes_names(ctl: Controllers) -> None:
    d = ctl.reg.create(DEPLOY, "default", deployment(3))
    settle(ctl)
    rss = ctl.store.list(RS, "default")[0]
    assert len(rss) == 1
    rs = rss[0]
    h = template_hash(d["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{h}" and rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    ps = pods(ctl)
    assert len(ps) == 3
    for p in ps:
        assert p["metadata"]["name"].startswith(f"web-{h}-") and len(p["metadata"]["name"]) == len(f"web-{h}-") + 5
        assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    status = ctl.store.get(DEPLOY, "default", "web")["status"]
    assert status["readyReplicas"] == 3 and status["availableReplicas"] == 3 and status["updatedReplicas"] == 3
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Available": "True", "Progressing": "True"}


def test_scale_up_and_down(ctl: Controllers) -> None:
    ctl.reg.create(DEPLOY, "default", deployment(2))
    settle(ctl)
    ctl.reg.patch(DEPLOY, "default", "web", "application/merge-patch+json", {"spec": {"replicas": 5}})
    settle(ctl)
    assert len(pods(ctl)) == 5
    ctl.reg.patch(DEPLOY, "default", "web", "application/merge-patch+json", {"spec": {"replicas": 1}})
    settle(ctl)
    assert len(pods(ctl)) == 1


def test_rolling_update_keeps_availability(ctl: Controllers) -> None:
    ctl.reg.create(DEPLOY, "default", deployment(4, maxSurge=1, maxUnavailable=1, type="RollingUpdate"))
    settle(ctl)
    d = ctl.store.get(DEPLOY, "default", "web")
    template = copy.deepcopy(d["spec"]["template"])
    template["spec"]["containers"][0]["image"] = "hello-ip:2"
    ctl.reg.patch(DEPLOY, "default", "web", "application/merge-patch+json", {"spec": {"template": template}})
    for _ in range(30):
        ctl.sync_all()
        run_kubelet(ctl)
        ready = [p for p in pods(ctl) if p.get("status", {}).get("conditions")]
        assert len(ready) >= 4 - 1, "fewer than replicas - maxUnavailable pods"
        assert len(pods(ctl)) <= 4 + 1, "more than replicas + maxSurge pods"
    images = {p["spec"]["containers"][0]["image"] for p in pods(ctl)}
    assert images == {"hello-ip:2"} and len(pods(ctl)) == 4
    rss = sorted(
        ctl.store.list(RS, "default")[0],
        key=lambda r: r["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
    )
    assert [r["spec"]["replicas"] for r in rss] == [0, 4]


def test_recreate_removes_old_pods_first(ctl: Controllers) -> None:
    ctl.reg.create(DEPLOY, "default", deployment(2, type="Recreate"))
    settle(ctl)
    d = ctl.store.get(DEPLOY, "default", "web")
    template = copy.deepcopy(d["spec"]["template"])
    template["spec"]["containers"][0]["image"] = "hello-ip:2"
    ctl.reg.patch(DEPLOY, "default", "web", "application/merge-patch+json", {"spec": {"template": template}})
    ctl.sync_all()
    assert all(p["spec"]["containers"][0]["image"] == "hello-ip:1" for p in pods(ctl))
    settle(ctl)
    assert {p["spec"]["containers"][0]["image"] for p in pods(ctl)} == {"hello-ip:2"}


def test_revision_history_limit(ctl: Controllers) -> None:
    body = deployment(1)
    body["spec"]["revisionHistoryLimit"] = 1
    ctl.reg.create(DEPLOY, "default", body)
    settle(ctl)
    for tag in ("2", "3", "4"):
        d = ctl.store.get(DEPLOY, "default", "web")
        d["spec"]["template"]["spec"]["containers"][0]["image"] = f"hello-ip:{tag}"
        ctl.reg.update(DEPLOY, "default", "web", d)
        settle(ctl, rounds=8)
    assert len(ctl.store.list(RS, "default")[0]) == 2


def test_endpoints_follow_ready_pods_and_named_ports(ctl: Controllers) -> None:
    ctl.reg.create(DEPLOY, "default", deployment(2))
    ctl.reg.create(
        BY_KIND["Service"],
        "default",
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
        },
    )
    settle(ctl)
    ep = ctl.store.get(EP, "default", "web")
    assert len(ep["subsets"][0]["addresses"]) == 2 and ep["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_endpoints_are_per_namespace(ctl: Controllers) -> None:
    ctl.reg.create(BY_KIND["Namespace"], "", {"metadata": {"name": "other"}})
    ctl.reg.create(DEPLOY, "other", deployment(1))
    ctl.reg.create(
        BY_KIND["Service"],
        "default",
        {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
    )
    ctl.sync_all()
    assert "subsets" not in ctl.store.get(EP, "default", "web")


def test_deleting_a_deployment_collects_its_replicasets_and_pods(ctl: Controllers) -> None:
    ctl.reg.create(DEPLOY, "default", deployment(2))
    settle(ctl)
    ctl.reg.delete(DEPLOY, "default", "web")
    settle(ctl)
    assert ctl.store.list(RS, "default")[0] == [] and pods(ctl) == []


def test_orphan_cascade_keeps_replicasets(ctl: Controllers) -> None:
    ctl.reg.create(DEPLOY, "default", deployment(2))
    settle(ctl)
    ctl.reg.delete(DEPLOY, "default", "web", propagation="Orphan")
    settle(ctl)
    assert len(ctl.store.list(RS, "default")[0]) == 1 and len(pods(ctl)) == 2


def test_namespace_deletion_empties_it(ctl: Controllers) -> None:
    ctl.reg.create(BY_KIND["Namespace"], "", {"metadata": {"name": "tmp"}})
    ctl.reg.create(BY_KIND["ConfigMap"], "tmp", {"metadata": {"name": "a"}})
    ctl.reg.delete(BY_KIND["Namespace"], "", "tmp")
    assert ctl.store.get(BY_KIND["Namespace"], "", "tmp")["metadata"]["deletionTimestamp"]
    settle(ctl)
    assert ctl.store.find(BY_KIND["Namespace"], "", "tmp") is None
