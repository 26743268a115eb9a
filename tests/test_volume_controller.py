"""Volume binding and the mikro-hostpath provisioner without Docker: the pure plans, then the
controller over a real store in a temporary state directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mikro.api import storage, validation
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.controllers import volume
from mikro.controlplane import bootstrap
from mikro.node import volumes as node_volumes

PVC, PV, SC, POD = (BY_KIND[k] for k in ("PersistentVolumeClaim", "PersistentVolume", "StorageClass", "Pod"))


def claim(name: str = "data", size: str = "1Gi", modes: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {"accessModes": modes or ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec},
    }


def static_pv(name: str, size: str, modes: list[str], cls: str = "manual", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": modes,
            "storageClassName": cls,
            "hostPath": {"path": f"/srv/{name}"},
            **spec,
        },
        "status": {"phase": "Available"},
    }


def user(claim_name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim_name}}]},
        "status": {"phase": "Pending"},
    }


CLASSES = {
    storage.DEFAULT_CLASS: storage.default_class(),
    "fast": {"metadata": {"name": "fast"}, "provisioner": storage.PROVISIONER, "volumeBindingMode": "Immediate", "reclaimPolicy": "Retain"},
    "ebs": {"metadata": {"name": "ebs"}, "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "Immediate"},
}


def test_default_class_is_marked_default_and_waits_for_a_consumer() -> None:
    sc = storage.default_class()
    assert sc["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert (sc["provisioner"], sc["reclaimPolicy"], sc["volumeBindingMode"]) == (
        "mikro.io/hostpath",
        "Delete",
        "WaitForFirstConsumer",
    )
    c = claim()
    storage.admit_claim(c, [sc])
    assert c["spec"]["storageClassName"] == storage.DEFAULT_CLASS
    explicit = claim(storageClassName="")
    storage.admit_claim(explicit, [sc])
    assert explicit["spec"]["storageClassName"] == ""  # "" asks for no class at all


def test_wait_for_first_consumer_then_provision(tmp_path: Path) -> None:
    c = claim(storageClassName=storage.DEFAULT_CLASS)
    p = volume.plan_claim(c, [], CLASSES, [], tmp_path, "node")
    assert p.provision is None and p.status == {"phase": "Pending"}
    assert ("Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding") in p.events
    p = volume.plan_claim(c, [], CLASSES, [user("data")], tmp_path, "node")
    assert p.select_node == "node"
    pv = p.provision
    assert pv is not None and pv["metadata"]["name"] == "pvc-uid-data"
    assert pv["spec"]["hostPath"]["path"] == str(tmp_path / "default-data-pvc-uid-data")
    assert pv["spec"]["claimRef"]["uid"] == "uid-data"
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert pv["spec"]["capacity"] == {"storage": "1Gi"}


def test_immediate_class_provisions_at_once_and_any_access_mode_is_given(tmp_path: Path) -> None:
    # One node: every access mode is honest, as microk8s-hostpath grants them all.
    p = volume.plan_claim(claim(storageClassName="fast", modes=["ReadWriteMany"]), [], CLASSES, [], tmp_path, "n")
    assert p.provision is not None and p.provision["spec"]["accessModes"] == ["ReadWriteMany"]
    assert p.provision["spec"]["persistentVolumeReclaimPolicy"] == "Retain"


def test_unknown_class_and_foreign_provisioner_stay_pending_with_events(tmp_path: Path) -> None:
    p = volume.plan_claim(claim(storageClassName="x"), [], CLASSES, [], tmp_path, "n")
    assert p.provision is None and p.status == {"phase": "Pending"}
    assert p.events == [("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "x" not found')]
    p = volume.plan_claim(claim(storageClassName="ebs", modes=["ReadWriteMany"]), [], CLASSES, [], tmp_path, "n")
    assert p.provision is None and p.events[0][1] == "ExternalProvisioning"
    assert "external provisioner 'ebs.csi.aws.com'" in p.events[0][2]


@pytest.mark.parametrize(
    ("pvs", "want"),
    [
        ([static_pv("small", "500Mi", ["ReadWriteOnce"]), static_pv("big", "10Gi", ["ReadWriteOnce"])], "big"),
        ([static_pv("big", "10Gi", ["ReadWriteOnce"]), static_pv("right", "2Gi", ["ReadWriteOnce", "ReadWriteMany"])], "right"),
        ([static_pv("ro", "5Gi", ["ReadOnlyMany"])], None),
        ([static_pv("other", "5Gi", ["ReadWriteOnce"], cls="slow")], None),
    ],
)
def test_static_volumes_bind_by_class_size_and_access_mode(pvs: list[dict[str, Any]], want: str | None, tmp_path: Path) -> None:
    p = volume.plan_claim(claim(size="1Gi", storageClassName="manual"), pvs, CLASSES, [], tmp_path, "n")
    assert (p.bind_to or {}).get("metadata", {}).get("name") == want
    assert p.provision is None


def test_released_volume_follows_its_reclaim_policy() -> None:
    bound = static_pv("pv1", "1Gi", ["ReadWriteOnce"], claimRef={"namespace": "default", "name": "data", "uid": "uid-data"})
    assert volume.plan_volume(bound, {("default", "data"): claim()}).status == {"phase": "Bound"}
    retained = {**bound, "spec": {**bound["spec"], "persistentVolumeReclaimPolicy": "Retain"}}
    assert volume.plan_volume(retained, {}).status == {"phase": "Released"}
    deleted = {**bound, "spec": {**bound["spec"], "persistentVolumeReclaimPolicy": "Delete"}}
    assert volume.plan_volume(deleted, {}).delete
    # A claim of the same name made anew is another claim: the volume stays released.
    assert volume.plan_volume(retained, {("default", "data"): claim(name="data") | {"metadata": {"name": "data", "namespace": "default", "uid": "new"}}}).status == {"phase": "Released"}


def test_claim_validation_wording() -> None:
    bad = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "x"}, "spec": {}}
    errors = [str(e) for e in validation.validate(bad)]
    assert "spec.accessModes: Required value: at least 1 access mode is required" in errors
    assert "spec.resources[storage]: Required value" in errors


@pytest.fixture()
def cluster(tmp_path: Path) -> tuple[Registry, volume.VolumeController]:
    registry = Registry(Store(tmp_path / "store.db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    return registry, volume.VolumeController(registry, tmp_path / "volumes")


def test_provisioned_volume_lifecycle_through_the_store(cluster: tuple[Registry, volume.VolumeController], tmp_path: Path) -> None:
    reg, ctl = cluster
    created = reg.create(PVC, "default", {"metadata": {"name": "data"}, "spec": claim()["spec"]})
    assert created["spec"]["storageClassName"] == "mikro-hostpath"
    ctl.sync_all(reg.store)
    assert reg.store.get(PVC, "default", "data")["status"] == {"phase": "Pending"}
    pod = {
        "metadata": {"name": "app"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox:1"}],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
        },
    }
    reg.create(POD, "default", pod)
    assert node_volumes.unbound_claims(reg.store.get(POD, "default", "app"), reg.store) == (
        "0/1 nodes are available: waiting for the volumes of its PersistentVolumeClaims to be provisioned.",
        False,
    )
    ctl.sync_all(reg.store)
    bound = reg.store.get(PVC, "default", "data")
    assert bound["status"] == {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}}
    pv = reg.store.get(PV, "", bound["spec"]["volumeName"])
    assert pv["metadata"]["name"] == f"pvc-{bound['metadata']['uid']}" and pv["status"] == {"phase": "Bound"}
    path = Path(node_volumes.claim_path("default", {"claimName": "data"}, reg.store))
    assert path.parent == tmp_path / "volumes" and path.is_dir()
    (path / "file").write_text("kept")
    # In use: the claim stays (Terminating) and so does the data.
    reg.delete(PVC, "default", "data")
    ctl.sync_all(reg.store)
    assert reg.store.find(PVC, "default", "data") is not None and (path / "file").exists()
    reg.store.delete(POD, "default", "app")
    ctl.sync_all(reg.store)
    assert reg.store.find(PVC, "default", "data") is None
    ctl.sync_all(reg.store)
    ctl.sync_all(reg.store)
    assert reg.store.find(PV, "", pv["metadata"]["name"]) is None and not path.exists()


def test_retain_keeps_the_volume_released_with_its_data(cluster: tuple[Registry, volume.VolumeController]) -> None:
    reg, ctl = cluster
    reg.create(SC, "", CLASSES["fast"] | {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass"})
    reg.create(PVC, "default", {"metadata": {"name": "keep"}, "spec": claim(storageClassName="fast")["spec"]})
    ctl.sync_all(reg.store)
    name = reg.store.get(PVC, "default", "keep")["spec"]["volumeName"]
    path = Path(reg.store.get(PV, "", name)["spec"]["hostPath"]["path"])
    (path / "file").write_text("kept")
    reg.delete(PVC, "default", "keep")
    for _ in range(3):
        ctl.sync_all(reg.store)
    pv = reg.store.get(PV, "", name)
    assert pv["status"] == {"phase": "Released"} and (path / "file").read_text() == "kept"
