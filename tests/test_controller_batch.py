"""The controllers' batched reads give what the per-object reads give (no Docker)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.controllers import deployment as deploy_mod
from mikro.controllers.helpers import ClusterApi
from mikro.controllers.manager import Controllers
from mikro.controlplane import bootstrap
from tests.test_controllers import deployment, run_kubelet

DEPLOY, RS, NS = BY_KIND["Deployment"], BY_KIND["ReplicaSet"], BY_KIND["Namespace"]


@pytest.fixture()
def ctl(tmp_path: Path) -> Controllers:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    return Controllers(registry)


def test_replicasets_by_owner_gives_each_deployment_its_own(ctl: Controllers) -> None:
    ctl.reg.create(NS, "", {"metadata": {"name": "other"}})
    for ns in ("default", "other"):
        for i in range(3):
            body = deployment(2)
            body["metadata"]["name"] = f"web{i}"
            ctl.reg.create(DEPLOY, ns, body)
    for _ in range(4):
        ctl.sync_all()
        run_kubelet(ctl)
    # a second revision of one (two ReplicaSets), and a ReplicaSet of no Deployment
    d = ctl.store.get(DEPLOY, "default", "web1")
    template = copy.deepcopy(d["spec"]["template"])
    template["spec"]["containers"][0]["image"] = "hello-ip:2"
    ctl.reg.patch(DEPLOY, "default", "web1", "application/merge-patch+json", {"spec": {"template": template}})
    ctl.sync_all()
    orphan = {
        "metadata": {"name": "loose"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "loose"}}, "template": d["spec"]["template"]},
    }
    orphan["spec"]["template"]["metadata"]["labels"] = {"app": "loose"}
    ctl.reg.create(RS, "default", orphan)
    api = ClusterApi(ctl.reg)
    by_owner = deploy_mod.replicasets_by_owner(api)
    deployments = api.list(DEPLOY)
    assert len(deployments) == 6
    counts = []
    for d in deployments:
        one_by_one = deploy_mod.owned_replicasets(api, d)
        assert deploy_mod.owned_replicasets(api, d, by_owner) == one_by_one
        counts.append(len(one_by_one))
    assert sorted(counts) == [1, 1, 1, 1, 1, 2]


def test_a_pass_with_the_index_writes_what_passes_without_it(tmp_path: Path) -> None:
    """The same cluster settled by passes that list per Deployment and by passes that use the
    index ends in the same objects."""
    results = []
    for batched in (False, True):
        registry = Registry(Store(tmp_path / f"db{batched}"), "10.152.128.0/17", "mikro")
        bootstrap(registry, "mikro", "mikro", "10.152.0.1")
        ctl = Controllers(registry)
        if not batched:
            original = deploy_mod.replicasets_by_owner
            deploy_mod.replicasets_by_owner = lambda api: None  # type: ignore[assignment,return-value]
        try:
            for i in range(4):
                body = deployment(i + 1)
                body["metadata"]["name"] = f"web{i}"
                ctl.reg.create(DEPLOY, "default", body)
            for _ in range(6):
                ctl.sync_all()
                run_kubelet(ctl)
            ctl.reg.patch(DEPLOY, "default", "web2", "application/merge-patch+json", {"spec": {"replicas": 5}})
            for _ in range(6):
                ctl.sync_all()
                run_kubelet(ctl)
        finally:
            if not batched:
                deploy_mod.replicasets_by_owner = original
        shape = {}
        for res in (DEPLOY, RS):
            for obj in ctl.store.list(res, "default")[0]:
                shape[(res.kind, obj["metadata"]["name"].split("-")[0])] = (
                    obj["spec"].get("replicas"),
                    {k: v for k, v in (obj.get("status") or {}).items() if k != "conditions"},
                )
        results.append(shape)
    assert results[0] == results[1] and len(results[0]) == 8
