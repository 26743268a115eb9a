"""`apply --wait`, its last step: until traffic reaches every ready pod of what was applied.

A pod is ready before the Services' proxies and the ingress send it traffic (the Endpoints
controller and the network controller come after it). The network controller says so on each
pod with the `io.mikro/Routed` condition (mikro/net/routing.py); this waits for it on every
ready pod a Service selects, following a watch of the pods rather than polling.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from mikro.api.resources import BY_KIND
from mikro.cli.client import Client
from mikro.errors import ApiError
from mikro.net.routing import is_routed, selected

POD, SVC = BY_KIND["Pod"], BY_KIND["Service"]
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Pod")


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _owned_by(pod: dict[str, Any], obj: dict[str, Any]) -> bool:
    """A pod of the workload: the pod itself, or one its selector matches."""
    meta, ometa = pod["metadata"], obj["metadata"]
    if meta.get("namespace") != ometa.get("namespace"):
        return False
    if obj["kind"] == "Pod":
        return meta.get("name") == ometa.get("name")
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    labels = meta.get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def unrouted(pods: list[dict[str, Any]], services: list[dict[str, Any]], objs: list[dict[str, Any]]) -> list[str]:
    """Names of the applied workloads' ready pods that a Service selects and traffic does not
    reach yet (pure)."""
    out = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp") or not _ready(pod):
            continue
        if not any(_owned_by(pod, o) for o in objs) or not selected(pod, services):
            continue
        if not is_routed(pod):
            out.append(pod["metadata"]["name"])
    return sorted(out)


def wait_routed(client: Client, objs: list[dict[str, Any]], deadline: float) -> list[str]:
    """Block until traffic reaches every ready pod of `objs` that a Service selects; the
    names of those it does not reach by the deadline (empty: all routed)."""
    workloads = [o for o in objs if o["kind"] in WORKLOADS]
    waiting: list[str] = []
    for ns in sorted({o["metadata"]["namespace"] for o in workloads}):
        waiting += _wait_namespace(client, ns, [o for o in workloads if o["metadata"]["namespace"] == ns], deadline)
    return waiting


def _wait_namespace(client: Client, ns: str, mine: list[dict[str, Any]], deadline: float) -> list[str]:
    services = client.list(SVC, ns)["items"]
    pods: dict[str, dict[str, Any]] = {}

    def relist() -> str:
        listed = client.list(POD, ns)
        pods.clear()
        pods.update({p["metadata"]["name"]: p for p in listed["items"]})
        return str(listed["metadata"].get("resourceVersion", ""))

    def done() -> bool:
        return not unrouted(list(pods.values()), services, mine)

    version = relist()
    while not done() and time.monotonic() < deadline:
        try:  # the next changes of the namespace's pods, or the list again after 410 Gone
            version = _follow(client, ns, pods, version, deadline, done)
        except ApiError as err:
            if err.code != 410:
                raise
            version = relist()
    return unrouted(list(pods.values()), services, mine)


def _follow(
    client: Client, ns: str, pods: dict[str, dict[str, Any]], version: str, deadline: float, done: Callable[[], bool]
) -> str:
    """Apply a watch's events to `pods` until `done()` or the deadline; the last version."""
    seconds = max(1, int(deadline - time.monotonic() + 0.999))
    query = {"watch": "true", "resourceVersion": version, "timeoutSeconds": seconds, "allowWatchBookmarks": "false"}
    for line in client.stream(f"/api/v1/namespaces/{ns}/pods", query):
        if not line.strip():
            continue
        event = json.loads(line)
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":
            raise ApiError(int(obj.get("code") or 500), str(obj.get("message") or "watch error"))
        name = (obj.get("metadata") or {}).get("name")
        version = (obj.get("metadata") or {}).get("resourceVersion") or version
        if event.get("type") == "DELETED":
            pods.pop(name, None)
        elif name:
            pods[name] = obj
        if done() or time.monotonic() >= deadline:
            break
    return version
