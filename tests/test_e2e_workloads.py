"""Pods, ReplicaSets and Deployments as Docker containers, kept alive (real Docker)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from .conftest import Mikro, wait_for

pytestmark = pytest.mark.docker


def deployment(name: str, replicas: int, image: str = "hello-ip:1", max_unavailable: int = 1) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 1, maxUnavailable: {max_unavailable}}}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: web
        image: {image}
        ports: [{{containerPort: 8080}}]
"""


def running_containers(m: Mikro, app: str) -> list[dict[str, Any]]:
    client = docker.from_env()
    return client.api.containers(
        filters={"label": [f"io.mikro/cluster={m.cluster}", f"io.mikro/label.app={app}"], "status": "running"}
    )


def app_containers(m: Mikro, app: str) -> list[dict[str, Any]]:
    return [c for c in running_containers(m, app) if c["Labels"]["io.mikro/container"] != "POD"]


def ready_line(m: Mikro, name: str) -> str:
    return m.kubectl("get", "deployment", name).stdout.splitlines()[1]


def test_replicas_scale_in_docker(mikro: Mikro) -> None:
    mikro.run("apply", "-f", "-", "--wait", input=deployment("three", 3), timeout=120)
    line = ready_line(mikro, "three").split()
    assert line[:4] == ["three", "3/3", "3", "3"]
    assert len(app_containers(mikro, "three")) == 3
    pods = mikro.pods("app=three")
    assert all(
        p["metadata"]["name"].startswith(p["metadata"]["labels"]["pod-template-hash"], len("three-")) for p in pods
    )
    names = {c["Labels"]["io.mikro/name"] for c in app_containers(mikro, "three")}
    assert names == {p["metadata"]["name"] for p in pods}
    assert mikro.kubectl("scale", "deployment/three", "--replicas=5").stdout.strip() == "deployment.apps/three scaled"
    wait_for(lambda: len(app_containers(mikro, "three")) == 5, 60, what="5 containers")
    wait_for(lambda: ready_line(mikro, "three").split()[1] == "5/5", 60, what="READY 5/5")
    mikro.kubectl("scale", "deployment", "three", "--replicas=1")
    wait_for(
        lambda: len(app_containers(mikro, "three")) == 1 and len(running_containers(mikro, "three")) == 2,
        60,
        what="1 pod left in Docker",
    )
    wait_for(lambda: ready_line(mikro, "three").split()[1] == "1/1", 30)
    # pods run with their pod's name as hostname and share the infra's network
    pod = mikro.pods("app=three")[0]
    assert mikro.kubectl("exec", pod["metadata"]["name"], "--", "hostname").stdout.strip() == pod["metadata"]["name"]
    wget = mikro.kubectl("exec", pod["metadata"]["name"], "--", "wget", "-qO-", "http://127.0.0.1:8080/")
    assert pod["status"]["podIP"] in wget.stdout


def test_rolling_update_and_undo(mikro: Mikro) -> None:
    mikro.run("apply", "-f", "-", "--wait", input=deployment("roll", 3), timeout=120)
    old_rs = mikro.json("rs", "-l", "app=roll")["items"]
    assert len(old_rs) == 1
    lowest = [99]
    stop = threading.Event()

    def watch_running() -> None:
        while not stop.is_set():
            ready = sum(
                1
                for p in mikro.pods("app=roll")
                if p["metadata"].get("deletionTimestamp") is None
                and any(
                    c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", [])
                )
            )
            lowest[0] = min(lowest[0], ready)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_running, daemon=True)
    watcher.start()
    mikro.run("apply", "-f", "-", input=deployment("roll", 3, image="hello-ip:2"))
    status = mikro.kubectl("rollout", "status", "deployment/roll", "--timeout", "120")
    stop.set()
    watcher.join()
    assert 'deployment "roll" successfully rolled out' in status.stdout
    assert lowest[0] >= 3 - 1, f"only {lowest[0]} ready pods during the rollout"
    rs = {r["metadata"]["name"]: r for r in mikro.json("rs", "-l", "app=roll")["items"]}
    assert rs[old_rs[0]["metadata"]["name"]]["spec"]["replicas"] == 0
    images = {p["spec"]["containers"][0]["image"] for p in mikro.pods("app=roll")}
    assert images == {"hello-ip:2"}
    history = mikro.kubectl("rollout", "history", "deployment/roll").stdout
    assert "REVISION" in history and "\n1 " in history and "\n2 " in history
    assert mikro.kubectl("rollout", "undo", "deployment/roll").stdout.strip() == "deployment.apps/roll rolled back"
    mikro.kubectl("rollout", "status", "deployment/roll", "--timeout", "120")
    wait_for(lambda: {p["spec"]["containers"][0]["image"] for p in mikro.pods("app=roll")} == {"hello-ip:1"}, 60)
    assert {c["Image"] for c in app_containers(mikro, "roll")} == {"hello-ip:1"}


def test_container_removed_behind_our_back_is_replaced(mikro: Mikro) -> None:
    mikro.run("apply", "-f", "-", "--wait", input=deployment("keep", 1), timeout=120)
    pod = mikro.pods("app=keep")[0]
    victim = app_containers(mikro, "keep")[0]
    docker.from_env().api.remove_container(victim["Id"], force=True)
    removed = time.monotonic()
    wait_for(lambda: len(app_containers(mikro, "keep")) == 1, 10, interval=0.05, what="a replacement container")
    assert time.monotonic() - removed < 2.0
    assert mikro.pods("app=keep")[0]["metadata"]["name"] == pod["metadata"]["name"]
    # a pod deleted through the API is replaced by its ReplicaSet
    mikro.kubectl("delete", "pod", pod["metadata"]["name"], "--wait=false")
    deleted = time.monotonic()
    wait_for(
        lambda: any(
            p["metadata"]["name"] != pod["metadata"]["name"] and not p["metadata"].get("deletionTimestamp")
            for p in mikro.pods("app=keep")
        ),
        10,
        interval=0.05,
    )
    assert time.monotonic() - deleted < 2.0


def test_crash_loop_back_off_and_previous_logs(mikro: Mikro) -> None:
    pod = """apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  containers:
  - name: main
    image: hello-ip:1
    command: ["sh", "-c", "echo crashed run; exit 3"]
"""
    mikro.run("apply", "-f", "-", input=pod)

    def row() -> list[str]:
        return mikro.kubectl("get", "pod", "crasher").stdout.splitlines()[1].split()

    wait_for(lambda: row()[2] == "CrashLoopBackOff" and row()[3] != "0", 40, what="CrashLoopBackOff")
    first = int(row()[3])
    wait_for(lambda: int(row()[3]) > first, 40, what="RESTARTS rising")
    previous = mikro.kubectl("logs", "crasher", "--previous")
    assert previous.stdout.strip() == "crashed run"
    described = mikro.kubectl("describe", "pod", "crasher").stdout
    assert "BackOff" in described and "Back-off restarting failed container" in described
    assert "Exit Code" in described or "ExitCode" in described or "exitCode" in described.replace(" ", "")
    failed = mikro.run("apply", "-f", "-", "--wait", "--timeout", "60", input=pod, check=False, timeout=120)
    assert failed.returncode == 1 and "CrashLoopBackOff" in failed.stderr and "crashed run" in failed.stderr
    mikro.kubectl("delete", "pod", "crasher")


def test_missing_image_reports_pull_errors(mikro: Mikro) -> None:
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ghost}\nspec:\n  containers:\n"
        "  - {name: main, image: 'mikro-test/does-not-exist:1'}\n"
    )
    failed = mikro.run("apply", "-f", "-", "--wait", "--timeout", "60", input=pod, check=False, timeout=120)
    assert failed.returncode == 1
    assert "ErrImagePull" in failed.stderr or "ImagePullBackOff" in failed.stderr
    status = mikro.kubectl("get", "pod", "ghost").stdout.splitlines()[1].split()[2]
    assert status in ("ErrImagePull", "ImagePullBackOff")
    events = mikro.kubectl("get", "events").stdout
    assert "Failed to pull image" in events
    # the pod starts by itself once the image appears locally
    docker.from_env().api.tag("hello-ip:1", "mikro-test/does-not-exist", "1")
    try:
        wait_for(lambda: mikro.kubectl("get", "pod", "ghost").stdout.splitlines()[1].split()[2] == "Running", 60)
    finally:
        mikro.kubectl("delete", "pod", "ghost", "--now")
        docker.from_env().api.remove_image("mikro-test/does-not-exist:1")


def test_validation_refused_before_storing(mikro: Mikro) -> None:
    bad = deployment("bad", 1).replace(
        "image: hello-ip:1", "image: hello-ip:1\n        resources: {limits: {cpu: 2 cores}}"
    )
    result = mikro.run("apply", "-f", "-", input=bad, check=False)
    assert result.returncode == 1 and "resources.limits.cpu" in result.stderr
    assert mikro.kubectl("get", "deploy", "bad", check=False).returncode == 1


def test_stop_and_start_restore_the_same_pods(mikro: Mikro) -> None:
    mikro.run("apply", "-f", "-", "--wait", input=deployment("durable", 2), timeout=120)
    before = sorted(p["metadata"]["name"] for p in mikro.pods())
    mikro.run("stop")
    running = docker.from_env().api.containers(filters={"label": f"io.mikro/cluster={mikro.cluster}"})
    assert running == []
    mikro.run("start")
    wait_for(lambda: ready_line(mikro, "durable").split()[1] == "2/2", 60)
    after = sorted(p["metadata"]["name"] for p in mikro.pods())
    assert after == before
    assert len(app_containers(mikro, "durable")) == 2
    # deleting the Deployment removes its ReplicaSets, pods and containers
    mikro.run("delete", "deployment", "durable")
    wait_for(lambda: not running_containers(mikro, "durable"), 60, what="containers gone")
    assert mikro.json("rs", "-l", "app=durable")["items"] == []


def test_pod_that_does_not_fit_stays_pending(mikro: Mikro) -> None:
    pod = """apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  containers:
  - name: main
    image: hello-ip:1
    resources: {requests: {cpu: "1000", memory: 64Mi}}
"""
    mikro.run("apply", "-f", "-", input=pod)
    wait_for(lambda: "FailedScheduling" in mikro.kubectl("get", "events").stdout, 20, what="FailedScheduling")
    assert mikro.kubectl("get", "pod", "huge").stdout.splitlines()[1].split()[2] == "Pending"
    described = mikro.kubectl("describe", "pod", "huge").stdout
    assert "0/1 nodes are available: 1 Insufficient cpu." in described
    client = docker.from_env()
    assert client.api.containers(all=True, filters={"label": [f"io.mikro/cluster={mikro.cluster}",
                                                              "io.mikro/name=huge"]}) == []
    mikro.kubectl("delete", "pod", "huge")


def test_images_import_and_ls(mikro: Mikro, tmp_path: Path) -> None:
    client = docker.from_env()
    client.api.tag("hello-ip:1", "mikro-test/imported", "7")
    archive = tmp_path / "image.tar"
    with archive.open("wb") as fh:
        for chunk in client.api.get_image("mikro-test/imported:7"):
            fh.write(chunk)
    client.api.remove_image("mikro-test/imported:7")
    try:
        assert mikro.run("images", "import", str(archive)).stdout.strip() == "Imported mikro-test/imported:7"
        listing = mikro.run("images", "ls").stdout
        assert listing.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
        assert any(line.split()[:2] == ["mikro-test/imported", "7"] for line in listing.splitlines())
    finally:
        client.api.remove_image("mikro-test/imported:7")


def test_control_plane_killed_comes_back_without_duplicates(mikro: Mikro) -> None:
    import json
    import os
    import signal

    mikro.run("apply", "-f", "-", "--wait", input=deployment("phoenix", 2), timeout=120)
    before = sorted(p["metadata"]["name"] for p in mikro.pods("app=phoenix"))
    containers_before = len(app_containers(mikro, "phoenix"))
    pid = json.loads((mikro.home / "apiserver.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: mikro.run("status", check=False).returncode == 1, 10, what="the control plane to be gone")
    assert len(app_containers(mikro, "phoenix")) == containers_before  # pods keep running meanwhile
    mikro.run("start")
    wait_for(lambda: ready_line(mikro, "phoenix").split()[1] == "2/2", 60)
    assert sorted(p["metadata"]["name"] for p in mikro.pods("app=phoenix")) == before
    time.sleep(1)
    assert len(app_containers(mikro, "phoenix")) == containers_before
    restarted = mikro.kubectl("rollout", "restart", "deployment/phoenix")
    assert restarted.stdout.strip() == "deployment.apps/phoenix restarted"
    mikro.kubectl("rollout", "status", "deployment/phoenix", "--timeout", "120")
    wait_for(lambda: set(p["metadata"]["name"] for p in mikro.pods("app=phoenix")).isdisjoint(before), 60)
    mikro.run("delete", "deployment", "phoenix")


def test_readiness_and_liveness_probes(mikro: Mikro) -> None:
    pods = """apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  containers:
  - name: web
    image: hello-ip:1
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready/, port: http}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: dying}
spec:
  containers:
  - name: web
    image: hello-ip:1
    livenessProbe:
      exec: {command: [cat, /tmp/alive]}
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 2
"""

    def row(name: str) -> list[str]:
        return mikro.kubectl("get", "pod", name).stdout.splitlines()[1].split()

    mikro.run("apply", "-f", "-", input=pods)
    wait_for(lambda: row("probed")[2] == "Running", 30, what="probed running")
    time.sleep(2)
    assert row("probed")[1] == "0/1"  # /ready/ does not exist: running, not ready
    assert "Readiness probe failed" in mikro.kubectl("describe", "pod", "probed").stdout
    mikro.kubectl("exec", "probed", "--", "sh", "-c", "mkdir -p /www/ready && echo ok > /www/ready/index.html")
    wait_for(lambda: row("probed")[1] == "1/1", 30, what="ready once the probe passes")

    wait_for(lambda: row("dying")[3] != "0", 30, what="a restart after the liveness probe failed")
    described = mikro.kubectl("describe", "pod", "dying").stdout
    assert "Liveness probe failed" in described and "failed liveness probe, will be restarted" in described
    mikro.kubectl("delete", "pod", "probed", "dying", "--now")


def test_completed_pod_stays_completed_after_stop_and_start(mikro: Mikro) -> None:
    pod = """apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: "hello-ip:1", command: [sh, -c, "echo ran once"]}
"""
    mikro.run("apply", "-f", "-", input=pod)

    def status() -> str:
        return mikro.kubectl("get", "pod", "once").stdout.splitlines()[1].split()[2]

    wait_for(lambda: status() == "Completed", 30, what="Completed")
    mikro.run("stop")
    mikro.run("start")
    time.sleep(2)
    assert status() == "Completed"
    assert mikro.kubectl("logs", "once").stdout == "ran once\n"  # one run, not two
    mikro.kubectl("delete", "pod", "once")
