"""The DaemonSet controller pass by pass (recording Api, hand-played kubelet), and its pure
node matching."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from mikro.api.resources import BY_KIND
from mikro.errors import ApiError
from mikro.node.scheduling import DAEMON_TOLERATIONS, fits_node
from tests.controller_kit import Cluster, created, deleted

DS, NODE, CR = BY_KIND["DaemonSet"], BY_KIND["Node"], BY_KIND["ControllerRevision"]


def daemonset(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "agent", "image": "hello-ip:1"}]},
            },
        },
    }
    body["spec"].update(spec)
    return body


@pytest.fixture()
def c(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def set_image(c: Cluster, image: str) -> None:
    ds = c.store.get(DS, "default", "agent")
    template = copy.deepcopy(ds["spec"]["template"])
    template["spec"]["containers"][0]["image"] = image
    c.patch("DaemonSet", "agent", {"spec": {"template": template}})


def status(c: Cluster) -> dict[str, Any]:
    return c.store.get(DS, "default", "agent")["status"]


def taint_node(c: Cluster, taints: list[dict[str, Any]]) -> None:
    node = c.store.get(NODE, "", "mikro")
    node["spec"]["taints"] = taints
    c.store.update(NODE, node)


def test_one_pod_on_the_node(c: Cluster) -> None:
    c.reg.create(DS, "default", daemonset())
    first = c.sync()
    [name] = created(first)
    assert re.fullmatch(r"agent-[a-z0-9]{5}", name)
    assert created(c.sync()) == []  # one pod, not one a pass
    pod = c.pod(name)
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["mikro"]}]}]
    }
    assert {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"} in pod["spec"][
        "tolerations"
    ]
    rev = c.store.list(CR, "default")[0]
    assert len(rev) == 1 and rev[0]["revision"] == 1
    assert (
        pod["metadata"]["labels"]["controller-revision-hash"]
        == rev[0]["metadata"]["labels"]["controller-revision-hash"]
    )
    assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
    assert status(c) == {
        "currentNumberScheduled": 1,
        "desiredNumberScheduled": 1,
        "numberMisscheduled": 0,
        "numberReady": 0,
        "observedGeneration": 1,
        "updatedNumberScheduled": 1,
        "numberUnavailable": 1,
    }
    c.set_pod(name)
    c.sync()
    assert status(c)["numberReady"] == 1 and status(c)["numberAvailable"] == 1 and "numberUnavailable" not in status(c)


@pytest.mark.parametrize(
    ("spec", "fits"),
    [
        ({}, True),
        ({"nodeSelector": {"kubernetes.io/os": "linux"}}, True),
        ({"nodeSelector": {"disk": "ssd"}}, False),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
                                {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "Exists"}]},
                            ]
                        }
                    }
                }
            },
            True,
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "kubernetes.io/os", "operator": "NotIn", "values": ["linux"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            False,
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["other"]}]}
                            ]
                        }
                    }
                }
            },
            False,
        ),
    ],
)
def test_fits_node_labels(spec: dict[str, Any], fits: bool) -> None:
    node = {"metadata": {"name": "mikro", "labels": {"kubernetes.io/os": "linux"}}, "spec": {}}
    assert fits_node(spec, node)[0] is fits


@pytest.mark.parametrize(
    ("taint", "tolerations", "fits"),
    [
        ({"key": "dedicated", "value": "db", "effect": "NoSchedule"}, [], False),
        ({"key": "dedicated", "value": "db", "effect": "PreferNoSchedule"}, [], True),
        ({"key": "dedicated", "value": "db", "effect": "NoSchedule"}, [{"key": "dedicated", "value": "db"}], True),
        ({"key": "dedicated", "value": "db", "effect": "NoSchedule"}, [{"key": "dedicated", "value": "web"}], False),
        ({"key": "dedicated", "value": "db", "effect": "NoExecute"}, [{"operator": "Exists"}], True),
        (
            {"key": "dedicated", "value": "db", "effect": "NoExecute"},
            [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            False,
        ),
        ({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}, [], True),  # daemon pods tolerate it
    ],
)
def test_fits_node_taints(taint: dict[str, Any], tolerations: list[dict[str, Any]], fits: bool) -> None:
    node = {"metadata": {"name": "mikro", "labels": {}}, "spec": {"taints": [taint]}}
    assert fits_node({"tolerations": tolerations}, node, DAEMON_TOLERATIONS)[0] is fits


def test_node_selector_and_taints_against_the_node(c: Cluster) -> None:
    c.reg.create(DS, "default", daemonset())
    c.sync()
    c.start_all()
    template = copy.deepcopy(c.store.get(DS, "default", "agent")["spec"]["template"])
    template["spec"]["nodeSelector"] = {"disk": "ssd"}
    c.patch("DaemonSet", "agent", {"spec": {"template": template}})
    assert len(deleted(c.sync())) == 1
    c.reap()
    assert created(c.sync()) == [] and status(c)["desiredNumberScheduled"] == 0
    node = c.store.get(NODE, "", "mikro")
    node["metadata"]["labels"]["disk"] = "ssd"
    c.store.update(NODE, node)
    assert len(created(c.sync())) == 1
    taint_node(c, [{"key": "dedicated", "value": "db", "effect": "NoExecute"}])
    assert len(deleted(c.sync())) == 1
    c.reap()
    assert created(c.sync()) == []
    template["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Equal", "value": "db"}]
    c.patch("DaemonSet", "agent", {"spec": {"template": template}})
    assert len(created(c.sync())) == 1


def test_rolling_update_without_surge_replaces_the_pod(c: Cluster) -> None:
    c.reg.create(DS, "default", daemonset())
    [old] = created(c.sync())
    c.start_all()
    c.sync()
    set_image(c, "hello-ip:2")
    assert deleted(c.sync()) == [old]
    assert created(c.sync()) == []  # the old pod is still terminating
    c.reap()
    [new] = created(c.sync())
    assert c.pod(new)["spec"]["containers"][0]["image"] == "hello-ip:2"
    c.start_all()
    c.sync()
    assert status(c)["updatedNumberScheduled"] == 1 and status(c)["numberAvailable"] == 1
    assert sorted(r["revision"] for r in c.store.list(CR, "default")[0]) == [1, 2]


def test_rolling_update_with_surge_starts_the_new_pod_first(c: Cluster) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    c.reg.create(DS, "default", daemonset(updateStrategy=strategy))
    [old] = created(c.sync())
    c.start_all()
    c.sync()
    set_image(c, "hello-ip:2")
    first = c.sync()
    [new] = created(first)
    assert deleted(first) == []
    c.set_pod(new, ready=False)
    assert deleted(c.sync()) == []  # the new pod is not available yet
    c.set_pod(new, ready=True)
    assert deleted(c.sync()) == [old]


def test_on_delete_waits_for_the_user(c: Cluster) -> None:
    c.reg.create(DS, "default", daemonset(updateStrategy={"type": "OnDelete"}))
    [old] = created(c.sync())
    c.start_all()
    set_image(c, "hello-ip:2")
    assert deleted(c.sync()) == []
    assert status(c)["updatedNumberScheduled"] == 0
    c.reg.delete(BY_KIND["Pod"], "default", old)
    c.reap()
    [new] = created(c.sync())
    assert c.pod(new)["spec"]["containers"][0]["image"] == "hello-ip:2"


def test_failed_daemon_pod_is_replaced(c: Cluster) -> None:
    c.reg.create(DS, "default", daemonset())
    [old] = created(c.sync())
    c.set_pod(old, ready=False, phase="Failed")
    assert deleted(c.sync()) == [old]


def test_defaults_and_validation(c: Cluster) -> None:
    ds = c.reg.create(DS, "default", daemonset())
    assert ds["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["spec"]["revisionHistoryLimit"] == 10
    bad = daemonset(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}})
    bad["metadata"]["name"] = "bad"
    with pytest.raises(ApiError) as err:
        c.reg.create(DS, "default", bad)
    assert "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0" in (
        err.value.message
    )
    bad["spec"]["updateStrategy"] = {"type": "Everywhere"}
    with pytest.raises(ApiError) as err:
        c.reg.create(DS, "default", bad)
    assert (
        'spec.updateStrategy.type: Unsupported value: "Everywhere": supported values: "OnDelete", "RollingUpdate"'
        in (err.value.message)
    )
