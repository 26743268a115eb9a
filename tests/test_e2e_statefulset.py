"""StatefulSets and DaemonSets on real Docker: ordered start, stable names, per-pod storage
and DNS, rollouts (the real `mikro` CLI)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from .conftest import Mikro, wait_for

pytestmark = pytest.mark.docker

# Each pod writes its own name into its volume once, then serves; `cat /data/owner` tells
# whose volume a pod has.
STACK = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 8080, name: http}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 3
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: hello-ip:1
        command: ["sh", "-c", "test -f /data/owner || hostname > /data/owner; exec /bin/hello-ip"]
        ports: [{containerPort: 8080, name: http}]
        readinessProbe:  # slow to become ready, never flapping on a loaded machine
          httpGet: {path: /, port: 8080}
          initialDelaySeconds: 2
          periodSeconds: 1
          timeoutSeconds: 5
          failureThreshold: 10
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
"""

DAEMONSET = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      terminationGracePeriodSeconds: 1
      nodeSelector: {kubernetes.io/os: linux}
      containers:
      - name: agent
        image: IMAGE
        ports: [{containerPort: 8080}]
"""


def stamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")


def ready_since(pod: dict[str, Any]) -> datetime:
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert cond["status"] == "True"
    return stamp(cond["lastTransitionTime"])


def owner_of_volume(m: Mikro, pod: str) -> str:
    return m.kubectl("exec", pod, "--", "cat", "/data/owner").stdout.strip()


def sts_ready(m: Mikro) -> str:
    return m.kubectl("get", "statefulset", "web").stdout.splitlines()[1].split()[1]


def pod_names(m: Mikro, selector: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in m.pods(selector) if not p["metadata"].get("deletionTimestamp"))


def test_statefulset_identity_order_storage_and_dns(mikro: Mikro) -> None:
    out = mikro.run("apply", "-f", "-", "--wait", "--timeout", "400", input=STACK, timeout=450).stdout
    assert "statefulset.apps/web created" in out
    pods = {p["metadata"]["name"]: p for p in mikro.pods("app=web")}
    assert sorted(pods) == ["web-0", "web-1", "web-2"]
    # OrderedReady: each pod was created only once the previous one was Ready.
    for prev, nxt in (("web-0", "web-1"), ("web-1", "web-2")):
        assert stamp(pods[nxt]["metadata"]["creationTimestamp"]) >= ready_since(pods[prev]), (prev, nxt)
    header, *rows = mikro.kubectl("get", "statefulsets").stdout.splitlines()
    assert header.split() == ["NAME", "READY", "AGE"] and rows[0].split()[:2] == ["web", "3/3"]
    claims = mikro.kubectl("get", "pvc", "-o", "name").stdout.split()
    assert sorted(claims) == [f"persistentvolumeclaim/data-web-{i}" for i in range(3)]
    for name in pods:
        assert owner_of_volume(mikro, name) == name
        assert mikro.kubectl("exec", name, "--", "hostname").stdout.strip() == name

    # web-0.web (and its full name) resolves from another pod to web-0's address.
    ip0 = pods["web-0"]["status"]["podIP"]

    def resolved(name: str) -> str | None:
        # busybox's nslookup skips the search list for dotted names; ping resolves as libc does.
        out = mikro.kubectl("exec", "web-2", "--", "ping", "-c1", "-W1", name, check=False).stdout
        found = re.search(r"^PING \S+ \((\d+\.\d+\.\d+\.\d+)\)", out, re.M)
        return found.group(1) if found else None

    wait_for(lambda: resolved("web-0.web") == ip0, 90, what="web-0.web to resolve to web-0")
    assert resolved("web-0.web.default.svc.cluster.local") == ip0
    assert resolved("web-1.web") == pods["web-1"]["status"]["podIP"]
    answer = mikro.kubectl("exec", "web-2", "--", "wget", "-qO-", "http://web-0.web:8080/").stdout
    assert answer.strip() == f"Hello from web-0 ({ip0})"

    # web-1 deleted comes back as web-1, with web-1's data.
    uid = pods["web-1"]["metadata"]["uid"]
    mikro.kubectl("delete", "pod", "web-1")
    wait_for(
        lambda: any(p["metadata"]["uid"] != uid for p in mikro.pods("app=web") if p["metadata"]["name"] == "web-1"),
        120,
        what="a new web-1",
    )
    wait_for(lambda: sts_ready(mikro) == "3/3", 180, what="READY 3/3 after the deletion")
    assert owner_of_volume(mikro, "web-1") == "web-1"

    # Scale to 1 and back to 3: every pod reads its own data again.
    assert mikro.kubectl("scale", "statefulset/web", "--replicas=1").stdout.strip() == "statefulset.apps/web scaled"
    wait_for(lambda: pod_names(mikro, "app=web") == ["web-0"], 180, what="only web-0 left")
    mikro.kubectl("scale", "sts", "web", "--replicas=3")
    wait_for(lambda: sts_ready(mikro) == "3/3", 240, what="READY 3/3 after the scale up")
    for name in ("web-0", "web-1", "web-2"):
        assert owner_of_volume(mikro, name) == name

    # After `mikro stop` and `mikro start` the same pods come back on the same volumes.
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in mikro.pods("app=web")}
    mikro.run("stop")
    mikro.run("start")
    for name in ("web-0", "web-1", "web-2"):
        wait_for(
            lambda name=name: (
                mikro.kubectl("exec", name, "--", "cat", "/data/owner", check=False).stdout.strip() == name
            ),
            240,
            what=f"{name} to run again and read its own volume",
        )
    assert {p["metadata"]["name"]: p["metadata"]["uid"] for p in mikro.pods("app=web")} == uids
    wait_for(lambda: sts_ready(mikro) == "3/3", 120, what="READY 3/3 after the restart")

    # A rollout by ordinal, its history, and an undo back to the first template.
    mikro.run("apply", "-f", "-", input=STACK.replace("image: hello-ip:1", "image: hello-ip:2"))
    status = mikro.run("kubectl", "rollout", "status", "sts/web", "--timeout", "400", timeout=450).stdout
    assert "partitioned roll out complete: 3 new pods have been updated..." in status  # kubectl's words
    images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in mikro.pods("app=web")}
    assert images == {"web-0": "hello-ip:2", "web-1": "hello-ip:2", "web-2": "hello-ip:2"}
    history = mikro.kubectl("rollout", "history", "statefulset/web").stdout.splitlines()
    assert history[0] == "statefulset.apps/web" and [line.split()[0] for line in history[2:]] == ["1", "2"]
    assert mikro.kubectl("rollout", "undo", "sts/web").stdout.strip() == "statefulset.apps/web rolled back"
    mikro.run("kubectl", "rollout", "status", "sts/web", "--timeout", "400", timeout=450)
    history = mikro.kubectl("rollout", "history", "sts/web").stdout.splitlines()
    assert [line.split()[0] for line in history[2:]] == ["2", "3"]
    assert {p["spec"]["containers"][0]["image"] for p in mikro.pods("app=web")} == {"hello-ip:1"}
    revs = mikro.kubectl("get", "controllerrevisions").stdout.splitlines()
    assert revs[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert all(r.split()[1] == "statefulset.apps/web" for r in revs[1:])
    mikro.run("delete", "-f", "-", input=STACK)
    wait_for(lambda: mikro.pods("app=web") == [], 120, what="the pods to go")
    # Retain (the default): the claims outlive the set.
    assert len(mikro.kubectl("get", "pvc", "-o", "name").stdout.split()) == 3


def test_daemonset_runs_one_pod_and_rolls_it(mikro: Mikro) -> None:
    out = mikro.run("apply", "-f", "-", "--wait", input=DAEMONSET.replace("IMAGE", "hello-ip:1"), timeout=300).stdout
    assert "daemonset.apps/agent created" in out
    pods = mikro.pods("app=agent")
    assert len(pods) == 1 and re.fullmatch(r"agent-[a-z0-9]{5}", pods[0]["metadata"]["name"])
    first = pods[0]["metadata"]["name"]
    header, row = mikro.kubectl("get", "ds").stdout.splitlines()
    assert header.split() == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE",
        "SELECTOR",
        "AGE",
    ]
    assert row.split()[:7] == ["agent", "1", "1", "1", "1", "1", "kubernetes.io/os=linux"]
    mikro.run("apply", "-f", "-", input=DAEMONSET.replace("IMAGE", "hello-ip:2"))
    status = mikro.run("kubectl", "rollout", "status", "ds/agent", "--timeout", "300", timeout=350).stdout
    assert 'daemon set "agent" successfully rolled out' in status
    pods = [p for p in mikro.pods("app=agent") if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 1 and pods[0]["metadata"]["name"] != first
    assert pods[0]["spec"]["containers"][0]["image"] == "hello-ip:2"
    history = mikro.kubectl("rollout", "history", "ds/agent").stdout.splitlines()
    assert [line.split()[0] for line in history[2:]] == ["1", "2"]
    mikro.run("delete", "-f", "-", input=DAEMONSET.replace("IMAGE", "hello-ip:2"))


def test_bad_statefulset_is_refused_and_nothing_is_applied(mikro: Mikro) -> None:
    bad = STACK.replace("selector: {matchLabels: {app: web}}", "selector: {matchLabels: {app: other}}").replace(
        "resources: {requests: {storage: 64Mi}}", "resources: {}"
    )
    proc = mikro.run("apply", "-f", "-", input=bad, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:")
    assert 'document 2 (StatefulSet "web")' in proc.stderr  # the file and document, as mikro names them
    assert "`selector` does not match template `labels`" in proc.stderr
    assert "spec.volumeClaimTemplates[0].spec.resources[storage]: Required value" in proc.stderr
    left = mikro.kubectl("get", "statefulsets,services", "-o", "name").stdout.split()
    assert [n for n in left if n != "service/kubernetes"] == []  # default/kubernetes is the API's own
