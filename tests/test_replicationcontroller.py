"""ReplicationControllers run their pods (core/v1, a label-map selector), as the ReplicaSet
controller keeps a ReplicaSet's: created with the controller as owner, scaled through
spec.replicas and the scale subresource, status counted, pods collected with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mikro.api.registry import scale_of
from mikro.api.resources import BY_KIND
from mikro.cli import printers
from tests.controller_kit import Cluster, created, deleted

RC = BY_KIND["ReplicationController"]


def controller(replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "nginx"},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "hello-ip:1"}]},
            },
        },
    }


@pytest.fixture()
def cl(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def test_a_replication_controller_runs_its_pods_and_counts_them(cl: Cluster) -> None:
    rc = cl.reg.create(RC, "default", controller(3))
    assert rc["spec"]["selector"] == {"app": "nginx"}  # defaulted from the template's labels
    made = created(cl.sync())
    assert len(made) == 3 and all(name.startswith("nginx-") for name in made)
    for pod in cl.pods():
        (owner,) = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("ReplicationController", "nginx", True)
        assert pod["metadata"]["labels"] == {"app": "nginx"}
    cl.start_all()
    cl.sync()
    status = cl.store.get(RC, "default", "nginx")["status"]
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (3, 3, 3)
    events = [e for e in cl.store.list(BY_KIND["Event"], "default")[0] if e["reason"] == "SuccessfulCreate"]
    assert {e["source"]["component"] for e in events} == {"replication-controller"}


def test_scaling_down_and_replacing_a_deleted_pod(cl: Cluster) -> None:
    cl.reg.create(RC, "default", controller(2))
    cl.sync()
    cl.start_all()
    victim = cl.names()[0]
    cl.reg.delete(BY_KIND["Pod"], "default", victim)
    cl.reap()
    assert len(created(cl.sync())) == 1
    cl.patch("ReplicationController", "nginx", {"spec": {"replicas": 1}})
    assert len(deleted(cl.sync())) == 1
    cl.reap()
    assert len(cl.pods()) == 1


def test_the_scale_subresource_of_a_replication_controller(cl: Cluster) -> None:
    rc = cl.reg.create(RC, "default", controller(2))
    assert scale_of(rc)["status"]["selector"] == "app=nginx"
    cl.reg.set_scale(RC, "default", "nginx", {"spec": {"replicas": 4}})
    assert len(created(cl.sync())) == 4


def test_kubectl_columns_for_replication_controllers(cl: Cluster) -> None:
    cl.reg.create(RC, "default", controller(2))
    cl.sync()
    cl.start_all()
    cl.sync()
    header, rows = printers.rows("ReplicationController", [cl.store.get(RC, "default", "nginx")], True)
    assert header[:4] == ["NAME", "DESIRED", "CURRENT", "READY"] and header[-1] == "SELECTOR"
    assert rows[0][:4] == ["nginx", "2", "2", "2"] and rows[0][-1] == "app=nginx"
