"""`kubectl drain`, `cordon` and `uncordon` (real kubectl 1.32) against a real mikro: drain
cordons the node and evicts through pods/eviction, so a PodDisruptionBudget holds the last
replica it protects; a cordoned node takes no new pod until uncordoned."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Mikro, real_kubectl, wait_for

pytestmark = pytest.mark.docker
STACK = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers: [{name: web, image: 'hello-ip:1'}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
"""


@pytest.fixture(scope="module")
def kubectl(mikro: Mikro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield real_kubectl(mikro, tmp_path_factory.mktemp("drain"))


def pods(kubectl: Any) -> list[dict[str, Any]]:
    done = kubectl("get", "pods", "-l", "app=web", "-o", "json")
    assert done.returncode == 0, done.stderr
    return [p for p in json.loads(done.stdout)["items"] if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def node_status(kubectl: Any, node: str) -> str:
    return kubectl("get", "node", node, "--no-headers").stdout.split()[1]


def test_drain_honours_the_budget_and_uncordon_lets_pods_back(mikro: Mikro, kubectl: Any, tmp_path: Path) -> None:
    manifest = tmp_path / "stack.yml"
    manifest.write_text(STACK)
    assert kubectl("apply", "-f", str(manifest)).returncode == 0
    wait_for(lambda: sum(ready(p) for p in pods(kubectl)) == 2, 90, what="both replicas ready")
    wait_for(
        lambda: (
            json.loads(kubectl("get", "pdb", "web", "-o", "json").stdout).get("status", {}).get("disruptionsAllowed")
            == 1
        ),
        30,
        what="the budget to allow one disruption",
    )
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout.strip()
    before = {p["metadata"]["name"] for p in pods(kubectl)}

    drained = kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=20s")
    out = drained.stdout + drained.stderr
    # One replica may go; the other is the one the budget keeps, and drain gives up on it.
    assert drained.returncode != 0, out
    assert f"node/{node} cordoned" in out
    assert "Cannot evict pod as it would violate the pod's disruption budget." in out
    assert out.count("evicted") == 1, out
    assert node_status(kubectl, node) == "Ready,SchedulingDisabled"
    now = pods(kubectl)
    running = [p for p in now if p["metadata"]["name"] in before]
    assert len(running) == 1 and ready(running[0])
    replacement = [p for p in now if p["metadata"]["name"] not in before]
    assert len(replacement) == 1 and replacement[0]["status"]["phase"] == "Pending"
    scheduled = [c for c in replacement[0]["status"]["conditions"] if c["type"] == "PodScheduled"][0]
    assert scheduled["reason"] == "Unschedulable"
    assert scheduled["message"] == "0/1 nodes are available: 1 node(s) were unschedulable."

    assert kubectl("uncordon", node).returncode == 0
    assert node_status(kubectl, node) == "Ready"
    wait_for(lambda: sum(ready(p) for p in pods(kubectl)) == 2, 60, what="the replacement scheduled and ready")


def test_cordon_keeps_new_pods_pending_and_tolerating_pods_run(kubectl: Any, tmp_path: Path) -> None:
    node = kubectl("get", "nodes", "-o", "jsonpath={.items[0].metadata.name}").stdout.strip()
    assert kubectl("cordon", node).returncode == 0
    try:
        plain = "apiVersion: v1\nkind: Pod\nmetadata: {name: plain}\nspec:\n  containers: [{name: c, image: 'hello-ip:1'}]\n"
        tolerant = plain.replace("plain", "tolerant") + (
            "  tolerations: [{key: node.kubernetes.io/unschedulable, operator: Exists, effect: NoSchedule}]\n"
        )
        for name, text in (("plain", plain), ("tolerant", tolerant)):
            path = tmp_path / f"{name}.yml"
            path.write_text(text)
            assert kubectl("apply", "-f", str(path)).returncode == 0
        wait_for(
            lambda: kubectl("get", "pod", "tolerant", "-o", "jsonpath={.status.phase}").stdout == "Running",
            60,
            what="the tolerating pod running on the cordoned node",
        )
        described = kubectl("describe", "pod", "plain").stdout
        assert "0/1 nodes are available: 1 node(s) were unschedulable." in described
        assert kubectl("get", "pod", "plain", "-o", "jsonpath={.status.phase}").stdout == "Pending"
    finally:
        assert kubectl("uncordon", node).returncode == 0
    wait_for(
        lambda: kubectl("get", "pod", "plain", "-o", "jsonpath={.status.phase}").stdout == "Running",
        60,
        what="the plain pod running once the node is uncordoned",
    )
