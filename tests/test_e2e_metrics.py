"""The metrics-server addon against real Docker: kubectl top with real numbers, and a
HorizontalPodAutoscaler scaling a Deployment up under load and back down after it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .conftest import Mikro, wait_for

pytestmark = pytest.mark.docker


def kubectl(mikro: Mikro, kubeconfig: Path, *args: str) -> str:
    import subprocess

    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60
    )
    return result.stdout if result.returncode == 0 else ""


@pytest.fixture(scope="module")
def kubeconfig(mikro: Mikro, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kc") / "config"
    path.write_text(mikro.run("config").stdout)
    assert shutil.which("kubectl"), ".ci/run provides kubectl"
    return path


def test_top_before_and_after_enabling_metrics_server(mikro: Mikro, kubeconfig: Path) -> None:
    import subprocess

    before = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "top", "pods"], capture_output=True, text=True)
    assert before.returncode != 0 and "Metrics API not available" in before.stderr
    enabled = mikro.run("enable", "metrics-server")
    assert enabled.stdout.strip().splitlines()[-1] == "Addon metrics-server is enabled"
    burner = """
apiVersion: v1
kind: Pod
metadata: {name: burner}
spec:
  containers:
  - {name: burn, image: "hello-ip:1", command: ["sh", "-c", "while :; do :; done"], resources: {requests: {cpu: 100m}}}
"""
    mikro.run("apply", "-f", "-", "--wait", input=burner, timeout=120)

    def burner_millicores() -> int:
        for line in kubectl(mikro, kubeconfig, "top", "pods", "--no-headers").splitlines():
            name, cpu, _ = line.split()
            if name == "burner" and cpu.endswith("m"):
                return int(cpu[:-1])
        return 0

    def node_cpu_percent() -> int:
        fields = kubectl(mikro, kubeconfig, "top", "node", "--no-headers").split()
        return int(fields[2].rstrip("%")) if len(fields) > 2 and fields[2].rstrip("%").isdigit() else 0

    # A busy loop is close to a full core, unless other work saturates the machine's cores.
    assert wait_for(
        lambda: burner_millicores() >= 600 or (burner_millicores() >= 100 and node_cpu_percent() >= 90),
        90,
        interval=2,
        what="the burner near a full core",
    )
    containers = kubectl(mikro, kubeconfig, "top", "pods", "-A", "--containers", "--no-headers")
    assert any(line.split()[:3] == ["default", "burner", "burn"] for line in containers.splitlines())
    node = kubectl(mikro, kubeconfig, "top", "node", "--no-headers").split()
    assert (
        node[0] == json.loads(mikro.run("kubectl", "get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"]
    )
    assert node[1].endswith("m") and node[2].endswith("%") and node[3].endswith("Mi") and node[4].endswith("%")
    mikro.kubectl("delete", "pod", "burner", "--now")


def test_hpa_scales_up_under_load_and_back_down(mikro: Mikro, kubeconfig: Path, tmp_path: Path) -> None:
    control = tmp_path / "control"
    control.mkdir()
    (control / "burn").write_text("on\n")  # the load is on while this file exists
    manifest = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: busy}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: busy}}}}
  template:
    metadata: {{labels: {{app: busy}}}}
    spec:
      containers:
      - name: main
        image: hello-ip:1
        command: ["sh", "-c", "while :; do if [ -f /control/burn ]; then :; else sleep 1; fi; done"]
        resources: {{requests: {{cpu: 100m}}}}
        volumeMounts: [{{name: control, mountPath: /control}}]
      volumes: [{{name: control, hostPath: {{path: "{control}"}}}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: busy}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: busy}}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 5}}
"""
    mikro.run("enable", "metrics-server")
    mikro.run("apply", "-f", "-", input=manifest)

    def replicas() -> int:
        return int(mikro.json("deployment", "busy")["spec"]["replicas"])

    wait_for(lambda: replicas() == 3, 150, interval=2, what="the HPA to scale busy to 3")
    row = mikro.kubectl("get", "hpa", "busy").stdout.splitlines()
    assert row[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    events = mikro.kubectl("get", "events", "--field-selector", "involvedObject.name=busy", "-o", "json").stdout
    messages = [e["message"] for e in json.loads(events)["items"] if e["reason"] == "SuccessfulRescale"]
    assert any(
        m.startswith("New size: 3; reason: cpu resource utilization (percentage of request) above target")
        for m in messages
    )
    (control / "burn").unlink()  # the load stops
    wait_for(lambda: replicas() == 1, 150, interval=2, what="the HPA to scale busy back to 1")
    status = mikro.json("hpa", "busy")["status"]
    assert status["desiredReplicas"] == 1
    assert {c["type"]: c["status"] for c in status["conditions"]}["ScalingActive"] == "True"
    mikro.run("delete", "deployment", "busy")
    mikro.run("delete", "hpa", "busy")
