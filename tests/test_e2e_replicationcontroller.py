"""A ReplicationController (core/v1) runs its pods on a real mikro, driven by real kubectl
1.32: created, scaled with `kubectl scale rc`, counted in `kubectl get rc`, and its pods
collected with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Mikro, real_kubectl, wait_for

pytestmark = pytest.mark.docker
RC = """\
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: legacy}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: web, image: 'hello-ip:1', ports: [{containerPort: 8080}]}]
"""


def test_replication_controller_runs_scales_and_is_collected(mikro: Mikro, tmp_path: Path) -> None:
    kubectl = real_kubectl(mikro, tmp_path)

    def running() -> list[dict[str, Any]]:
        items = json.loads(kubectl("get", "pods", "-l", "app=legacy", "-o", "json").stdout)["items"]
        return [
            p for p in items if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]

    manifest = tmp_path / "rc.yml"
    manifest.write_text(RC)
    done = kubectl("apply", "-f", str(manifest))
    assert done.returncode == 0 and "replicationcontroller/legacy created" in done.stdout, done.stderr
    assert "Warning" not in done.stderr
    wait_for(lambda: len(running()) == 2, 90, what="the controller's two pods running")
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController" for p in running())

    assert kubectl("scale", "rc", "legacy", "--replicas=3").returncode == 0
    wait_for(lambda: len(running()) == 3, 60, what="a third pod after kubectl scale")
    wait_for(
        lambda: kubectl("get", "rc", "legacy", "--no-headers").stdout.split()[1:4] == ["3", "3", "3"],
        30,
        what="kubectl get rc to read DESIRED CURRENT READY 3 3 3",
    )

    assert kubectl("delete", "rc", "legacy").returncode == 0
    wait_for(
        lambda: json.loads(kubectl("get", "pods", "-l", "app=legacy", "-o", "json").stdout)["items"] == [],
        60,
        what="the controller's pods collected with it",
    )
