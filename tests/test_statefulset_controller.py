"""The StatefulSet controller pass by pass, with a recording Api and a hand-played kubelet."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from mikro.api.resources import BY_KIND
from mikro.controllers import statefulset as stsmod
from mikro.errors import ApiError
from tests.controller_kit import Cluster, created, deleted

STS, PVC, CR = BY_KIND["StatefulSet"], BY_KIND["PersistentVolumeClaim"], BY_KIND["ControllerRevision"]


def statefulset(replicas: int = 3, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "hello-ip:1", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }
    body["spec"].update(spec)
    return body


@pytest.fixture()
def c(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def bring_up(c: Cluster, replicas: int = 3) -> None:
    for _ in range(replicas + 1):
        c.sync()
        c.start_all()
    c.sync()


def image_of(c: Cluster, name: str) -> str:
    return c.pod(name)["spec"]["containers"][0]["image"]


def set_image(c: Cluster, image: str) -> None:
    sts = c.store.get(STS, "default", "web")
    template = copy.deepcopy(sts["spec"]["template"])
    template["spec"]["containers"][0]["image"] = image
    c.patch("StatefulSet", "web", {"spec": {"template": template}})


def test_ordered_ready_creates_one_pod_at_a_time(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(3))
    first = c.sync()
    assert created(first) == ["web-0"] and created(first, "PersistentVolumeClaim") == ["data-web-0"]
    assert ("event", "SuccessfulCreate", "create Pod web-0 in StatefulSet web successful") in first
    # web-0 exists but is not Running and Ready: nothing more, pass after pass.
    assert created(c.sync()) == []
    c.set_pod("web-0", ready=False)
    assert created(c.sync()) == []
    c.set_pod("web-0", ready=True)
    assert created(c.sync()) == ["web-1"]
    c.set_pod("web-1")
    assert created(c.sync()) == ["web-2"]
    c.set_pod("web-2")
    last = c.sync()
    assert created(last) == [] and deleted(last) == []
    status = c.store.get(STS, "default", "web")["status"]
    revision = status["updateRevision"]
    assert status["replicas"] == 3 and status["readyReplicas"] == 3 and status["availableReplicas"] == 3
    assert status["currentReplicas"] == 3 and status["updatedReplicas"] == 3
    assert status["currentRevision"] == revision and status["observedGeneration"] == 1
    assert status["collisionCount"] == 0
    rev = c.store.get(CR, "default", revision)
    assert rev["revision"] == 1 and rev["metadata"]["ownerReferences"][0]["name"] == "web"
    assert revision.startswith("web-")


def test_pod_identity_hostname_subdomain_and_claim(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(1))
    c.sync()
    pod = c.pod("web-0")
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-0"
    assert labels["apps.kubernetes.io/pod-index"] == "0"
    assert labels["controller-revision-hash"] == c.store.get(STS, "default", "web")["status"]["updateRevision"]
    assert pod["spec"]["hostname"] == "web-0" and pod["spec"]["subdomain"] == "web"
    own = [v for v in pod["spec"]["volumes"] if not v["name"].startswith("kube-api-access-")]  # the token volume
    assert own == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}]
    claim = c.store.get(PVC, "default", "data-web-0")
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["metadata"]["labels"] == {"app": "web"}
    assert "ownerReferences" not in claim["metadata"]  # Retain: the claim outlives the set


def test_parallel_creates_every_pod_at_once(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(3, podManagementPolicy="Parallel"))
    assert sorted(created(c.sync())) == ["web-0", "web-1", "web-2"]


@pytest.mark.parametrize(
    ("policy", "passes"),
    [
        # OrderedReady: the highest ordinal first, the next only once it is gone.
        ("OrderedReady", [["web-4"], [], ["web-3"], [], ["web-2"], []]),
        ("Parallel", [["web-4", "web-3", "web-2"], [], [], [], [], []]),
    ],
)
def test_scale_down_order(c: Cluster, policy: str, passes: list[list[str]]) -> None:
    c.reg.create(STS, "default", statefulset(5, podManagementPolicy=policy))
    bring_up(c, 5)
    assert c.names() == [f"web-{i}" for i in range(5)]
    c.patch("StatefulSet", "web", {"spec": {"replicas": 2}})
    for i, want in enumerate(passes):
        actions = c.sync()
        assert deleted(actions) == want, f"pass {i}"
        if i % 2:
            c.reap()  # the kubelet removes the terminated pod between passes
    assert c.names() == ["web-0", "web-1"]
    # Retain: every claim stays, and a scale up finds its own claim again.
    assert sorted(p["metadata"]["name"] for p in c.store.list(PVC, "default")[0]) == [f"data-web-{i}" for i in range(5)]


def test_deleted_pod_comes_back_with_its_name_and_claim(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(3))
    bring_up(c)
    uid = c.pod("web-1")["metadata"]["uid"]
    c.reg.delete(BY_KIND["Pod"], "default", "web-1")
    assert created(c.sync()) == []  # still terminating
    c.reap()
    actions = c.sync()
    assert created(actions) == ["web-1"] and created(actions, "PersistentVolumeClaim") == []
    assert c.pod("web-1")["metadata"]["uid"] != uid


def test_rolling_update_from_the_highest_ordinal(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(3))
    bring_up(c)
    old_rev = c.store.get(STS, "default", "web")["status"]["currentRevision"]
    set_image(c, "hello-ip:2")
    order = []
    for _ in range(12):
        actions = c.sync()
        order += deleted(actions)
        c.reap()
        c.start_all()
    assert order == ["web-2", "web-1", "web-0"]
    assert {image_of(c, n) for n in c.names()} == {"hello-ip:2"}
    status = c.store.get(STS, "default", "web")["status"]
    assert status["currentRevision"] == status["updateRevision"] != old_rev
    assert status["updatedReplicas"] == 3 and status["currentReplicas"] == 3
    revs = sorted((r["revision"], r["metadata"]["name"]) for r in c.store.list(CR, "default")[0])
    assert revs == [(1, old_rev), (2, status["updateRevision"])]


def test_rolling_update_waits_for_each_pod_to_be_ready(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(3))
    bring_up(c)
    set_image(c, "hello-ip:2")
    assert deleted(c.sync()) == ["web-2"]
    c.reap()
    assert created(c.sync()) == ["web-2"]
    c.set_pod("web-2", ready=False)
    for _ in range(3):
        assert deleted(c.sync()) == []  # web-2 not ready: web-1 waits
    c.set_pod("web-2", ready=True)
    assert deleted(c.sync()) == ["web-1"]


def test_partition_updates_only_ordinals_at_or_above_it(c: Cluster) -> None:
    c.reg.create(
        STS, "default", statefulset(3, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    )
    bring_up(c)
    set_image(c, "hello-ip:2")
    for _ in range(8):
        c.sync()
        c.reap()
        c.start_all()
    assert [image_of(c, n) for n in c.names()] == ["hello-ip:1", "hello-ip:1", "hello-ip:2"]
    status = c.store.get(STS, "default", "web")["status"]
    assert status["updatedReplicas"] == 1 and status["currentReplicas"] == 2
    assert status["currentRevision"] != status["updateRevision"]
    # A pod below the partition deleted by hand comes back at the current revision.
    c.reg.delete(BY_KIND["Pod"], "default", "web-0")
    c.reap()
    c.sync()
    assert image_of(c, "web-0") == "hello-ip:1"


def test_max_unavailable_rolls_several_at_once(c: Cluster) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}
    c.reg.create(STS, "default", statefulset(3, podManagementPolicy="Parallel", updateStrategy=strategy))
    bring_up(c)
    set_image(c, "hello-ip:2")
    assert deleted(c.sync()) == ["web-2", "web-1"]


def test_on_delete_waits_for_the_user(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(2, updateStrategy={"type": "OnDelete"}))
    bring_up(c, 2)
    set_image(c, "hello-ip:2")
    for _ in range(3):
        assert deleted(c.sync()) == []
    c.reg.delete(BY_KIND["Pod"], "default", "web-0")
    c.reap()
    c.sync()
    assert image_of(c, "web-0") == "hello-ip:2" and image_of(c, "web-1") == "hello-ip:1"


def test_rollback_reuses_the_old_revision_with_a_new_number(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(1))
    bring_up(c, 1)
    first = c.store.get(STS, "default", "web")["status"]["updateRevision"]
    set_image(c, "hello-ip:2")
    for _ in range(4):
        c.sync()
        c.reap()
        c.start_all()
    set_image(c, "hello-ip:1")
    c.sync()
    revs = {r["metadata"]["name"]: r["revision"] for r in c.store.list(CR, "default")[0]}
    assert len(revs) == 2 and revs[first] == 3
    assert c.store.get(STS, "default", "web")["status"]["updateRevision"] == first


def test_failed_pod_is_replaced(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(1))
    bring_up(c, 1)
    c.set_pod("web-0", ready=False, phase="Failed")
    assert deleted(c.sync()) == ["web-0"]
    c.reap()
    assert created(c.sync()) == ["web-0"]


def test_retention_delete_when_scaled_and_deleted(c: Cluster) -> None:
    policy = {"whenDeleted": "Delete", "whenScaled": "Delete"}
    c.reg.create(STS, "default", statefulset(2, persistentVolumeClaimRetentionPolicy=policy))
    bring_up(c, 2)
    claim = c.store.get(PVC, "default", "data-web-1")
    assert [r["kind"] for r in claim["metadata"]["ownerReferences"]] == ["StatefulSet"]
    c.patch("StatefulSet", "web", {"spec": {"replicas": 1}})
    assert deleted(c.sync()) == ["web-1"]
    claim = c.store.get(PVC, "default", "data-web-1")
    assert [r["kind"] for r in claim["metadata"]["ownerReferences"]] == ["Pod"]
    c.reap()
    c.sync()  # the garbage collector: the claim's pod is gone
    assert c.store.find(PVC, "default", "data-web-1") is None
    c.reg.delete(STS, "default", "web")
    c.sync()
    c.reap()
    c.sync()
    assert c.store.list(PVC, "default")[0] == [] and c.pods() == []


def test_deleting_the_set_keeps_retained_claims(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(1))
    bring_up(c, 1)
    c.reg.delete(STS, "default", "web")
    c.sync()
    c.reap()
    c.sync()
    assert c.pods() == [] and c.store.list(CR, "default")[0] == []
    assert [p["metadata"]["name"] for p in c.store.list(PVC, "default")[0]] == ["data-web-0"]


def test_defaults() -> None:
    from mikro.api import defaults

    obj = defaults.apply({"kind": "StatefulSet", **statefulset(1)})
    spec = obj["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady" and spec["revisionHistoryLimit"] == 10
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"selector": {"matchLabels": {"app": "other"}}},
            'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
            "`selector` does not match template `labels`",
        ),
        ({"replicas": -1}, "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        (
            {"podManagementPolicy": "Sometimes"},
            'spec.podManagementPolicy: Unsupported value: "Sometimes": supported values: "OrderedReady", "Parallel"',
        ),
        (
            {"updateStrategy": {"type": "Rolling"}},
            'spec.updateStrategy.type: Unsupported value: "Rolling": supported values: "OnDelete", "RollingUpdate"',
        ),
        (
            {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
            "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep"}},
            'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": '
            'supported values: "Delete", "Retain"',
        ),
        (
            {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]},
            "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value",
        ),
    ],
)
def test_bad_statefulsets_are_refused(c: Cluster, change: dict[str, Any], message: str) -> None:
    body = statefulset(1)
    body["spec"].update(change)
    with pytest.raises(ApiError) as err:
        c.reg.create(STS, "default", body)
    assert err.value.code == 422 and message in err.value.message
    assert c.store.find(STS, "default", "web") is None


def test_pure_slots() -> None:
    sts = {"metadata": {"name": "db", "namespace": "default", "uid": "u"}, "spec": {}}
    assert stsmod.pod_name(sts, 3) == "db-3"
    assert stsmod.claim_name("data", sts, 3) == "data-db-3"
    assert stsmod.ordinal_of(sts, {"metadata": {"name": "db-12"}}) == 12
    assert stsmod.ordinal_of(sts, {"metadata": {"name": "db-01"}}) is None
    assert stsmod.ordinal_of(sts, {"metadata": {"name": "dbx-1"}}) is None


def test_only_the_mutable_fields_may_change(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(1))
    c.patch("StatefulSet", "web", {"spec": {"replicas": 2, "updateStrategy": {"rollingUpdate": {"partition": 1}}}})
    with pytest.raises(ApiError) as err:
        c.patch("StatefulSet", "web", {"spec": {"serviceName": "other"}})
    assert err.value.code == 422
    assert (
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
        "are forbidden"
    ) in err.value.message
    assert c.store.get(STS, "default", "web")["spec"]["serviceName"] == "web"


def test_orphan_cascade_keeps_pods_revisions_and_claims(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(1, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"}))
    bring_up(c, 1)
    c.reg.delete(STS, "default", "web", propagation="Orphan")
    c.sync()
    assert c.names() == ["web-0"]
    assert len(c.store.list(CR, "default")[0]) == 1 and len(c.store.list(PVC, "default")[0]) == 1


def test_revision_history_limit_prunes_the_oldest_idle_revisions(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(1, revisionHistoryLimit=1))
    bring_up(c, 1)
    for image in ("hello-ip:2", "hello-ip:3"):
        set_image(c, image)
        for _ in range(4):
            c.sync()
            c.reap()
            c.start_all()
    revs = sorted(r["revision"] for r in c.store.list(CR, "default")[0])
    assert revs == [2, 3]  # the current one and one idle one


def test_ordinals_start(c: Cluster) -> None:
    c.reg.create(STS, "default", statefulset(2, ordinals={"start": 5}, podManagementPolicy="Parallel"))
    assert sorted(created(c.sync())) == ["web-5", "web-6"]
    assert c.pod("web-5")["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "5"
