"""`mikro status --watch`: the cluster at a glance, one block per workload.

For each workload: ready/desired, its pods' states, the Services that select it with their
ready endpoints, the ingress routes that reach those Services, and the last error worth
reading (image pull message, crash log tail, failed probe, unschedulable reason). `build` is
pure (objects in, rows out) so that tests need no cluster; `render` makes a rich renderable;
`watch` keeps it live from the API's watch streams.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mikro.api.resources import BY_KIND
from mikro.cli.printers import age, pod_status

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
WATCHED_KINDS = (*WORKLOAD_KINDS, "ReplicaSet", "Pod", "Service", "Endpoints", "Ingress", "Event")
WAITING_ERRORS = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
)


@dataclass
class PodLine:
    name: str
    status: str
    ready: str
    restarts: int
    age: str


@dataclass
class WorkloadRow:
    kind: str
    namespace: str
    name: str
    ready: str
    pods: list[PodLine] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # "web: 10.152.0.3:8080, ..."
    routes: list[str] = field(default_factory=list)  # "http://host/path -> web:8080"
    error: str | None = None


def _meta(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("metadata") or {}


def _key(o: dict[str, Any]) -> tuple[str, str]:
    return _meta(o).get("namespace") or "", _meta(o).get("name") or ""


def _controller(o: dict[str, Any]) -> dict[str, Any] | None:
    refs = _meta(o).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


def _ready_of(kind: str, o: dict[str, Any]) -> str:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    if kind == "DaemonSet":
        return f"{status.get('numberReady', 0)}/{status.get('desiredNumberScheduled', 0)}"
    if kind == "Job":
        return f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}"
    if kind == "CronJob":
        return f"{len(status.get('active') or [])} active"
    return f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _last_error(pods: list[dict[str, Any]], events: list[dict[str, Any]], log_tails: dict[str, str]) -> str | None:
    """The one line most worth reading, newest pod first."""
    for pod in sorted(pods, key=lambda p: _meta(p).get("creationTimestamp") or "", reverse=True):
        name = _meta(pod).get("name", "")
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in WAITING_ERRORS:
                return f"{name}: {reason}: {waiting.get('message') or ''}".rstrip(": ")
            if reason == "CrashLoopBackOff":
                tail = log_tails.get(name, "").strip().splitlines()
                last = (cs.get("lastState") or {}).get("terminated") or {}
                code = f" (exit code {last['exitCode']})" if "exitCode" in last else ""
                return f"{name}: CrashLoopBackOff{code}" + (f": {tail[-1]}" if tail else "")
        pod_events = [e for e in events if (e.get("involvedObject") or {}).get("name") == name]
        for event in sorted(pod_events, key=lambda e: e.get("lastTimestamp") or "", reverse=True):
            if event.get("reason") in ("FailedScheduling", "Unhealthy", "Failed", "BackOff", "FailedMount"):
                return f"{name}: {event.get('reason')}: {event.get('message', '')}"
    return None


def build(
    objects: dict[str, list[dict[str, Any]]], log_tails: dict[str, str] | None = None, now: float | None = None
) -> list[WorkloadRow]:
    """Workloads with what serves them and what went wrong, from lists of objects by kind."""
    tails = log_tails or {}
    pods_by_owner: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    rs_owner = {(*_key(rs),): _controller(rs) for rs in objects.get("ReplicaSet", [])}
    job_owner = {(*_key(j),): _controller(j) for j in objects.get("Job", [])}
    bare: list[dict[str, Any]] = []
    for pod in objects.get("Pod", []):
        ns = _key(pod)[0]
        ref = _controller(pod)
        if ref is None:
            bare.append(pod)
            continue
        kind, name = ref.get("kind", ""), ref.get("name", "")
        if kind == "ReplicaSet" and (up := rs_owner.get((ns, name))) is not None:
            kind, name = up.get("kind", ""), up.get("name", "")
        pods_by_owner.setdefault((kind, ns, name), []).append(pod)
    # A CronJob's pods are its Jobs' pods.
    for (ns, job), ref in job_owner.items():
        if ref and ref.get("kind") == "CronJob":
            pods_by_owner.setdefault(("CronJob", ns, ref.get("name", "")), []).extend(
                pods_by_owner.get(("Job", ns, job), [])
            )

    endpoints = {_key(e): e for e in objects.get("Endpoints", [])}
    routes_by_service: dict[tuple[str, str], list[str]] = {}
    for ing in objects.get("Ingress", []):
        ns = _key(ing)[0]
        tls_hosts = {h for t in (ing.get("spec") or {}).get("tls") or [] for h in t.get("hosts") or []}
        for rule in (ing.get("spec") or {}).get("rules") or []:
            host = rule.get("host") or "localhost"
            scheme = "https" if host in tls_hosts else "http"
            for path in (rule.get("http") or {}).get("paths") or []:
                svc = (path.get("backend") or {}).get("service") or {}
                port = svc.get("port") or {}
                routes_by_service.setdefault((ns, svc.get("name", "")), []).append(
                    f"{scheme}://{host}{path.get('path') or '/'} -> {svc.get('name')}:{port.get('number') or port.get('name')}"
                )

    rows: list[WorkloadRow] = []
    workloads = [(k, o) for k in WORKLOAD_KINDS for o in objects.get(k, [])]
    workloads += [("Pod", p) for p in bare]
    events = objects.get("Event", [])
    for kind, obj in workloads:
        ns, name = _key(obj)
        if kind == "Job" and (ref := _controller(obj)) is not None and ref.get("kind") == "CronJob":
            continue  # shown under its CronJob
        pods = [obj] if kind == "Pod" else pods_by_owner.get((kind, ns, name), [])
        if kind == "Pod":
            ready = pod_status(obj)[1:3]
            ready_text = f"{ready[0]}/{ready[1]}"
        else:
            ready_text = _ready_of(kind, obj)
        template_labels = (
            (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
            or _meta(obj).get("labels")
            or {}
        )
        if kind == "CronJob":
            template_labels = {}
        row = WorkloadRow(kind=kind, namespace=ns, name=name, ready=ready_text)
        for pod in sorted(pods, key=lambda p: _meta(p).get("name", "")):
            status, ready_count, total, restarts, _ = pod_status(pod)
            row.pods.append(
                PodLine(
                    _meta(pod).get("name", ""),
                    status,
                    f"{ready_count}/{total}",
                    restarts,
                    age(_meta(pod).get("creationTimestamp"), now),
                )
            )
        for svc in objects.get("Service", []):
            if _key(svc)[0] != ns or not _selects((svc.get("spec") or {}).get("selector") or {}, template_labels):
                continue
            svc_name = _key(svc)[1]
            addresses = [
                f"{a.get('ip')}:{p.get('port')}"
                for subset in (endpoints.get((ns, svc_name)) or {}).get("subsets") or []
                for a in subset.get("addresses") or []
                for p in subset.get("ports") or []
            ]
            row.services.append(f"{svc_name}: {', '.join(addresses) or '<no ready endpoints>'}")
            row.routes.extend(routes_by_service.get((ns, svc_name), []))
        row.error = _last_error(pods, [e for e in events if _key(e)[0] == ns], tails)
        rows.append(row)
    return rows


def crash_looping(objects: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str, str, int]]:
    """(namespace, pod, container, restartCount) of every container in CrashLoopBackOff."""
    out = []
    for pod in objects.get("Pod", []):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff":
                out.append((*_key(pod), cs.get("name", ""), int(cs.get("restartCount", 0))))
    return out


def render(rows: list[WorkloadRow], header: str) -> Any:
    """One block per workload, lines never folded: the same text on a terminal (with colours)
    and piped (without)."""
    from rich.text import Text

    out = Text()
    out.append(header + "\n", style="bold")
    if not rows:
        out.append("No workloads.\n")
    for row in rows:
        out.append("\n")
        out.append(f"{row.kind.lower()}/{row.name}", style="bold")
        out.append(f"  -n {row.namespace}  ready {row.ready}\n")
        for pod in row.pods:
            ready, total = pod.ready.split("/")
            healthy = pod.status in ("Running", "Completed") and (ready == total or pod.status == "Completed")
            waiting = pod.status in ("ContainerCreating", "Pending", "Terminating", "PodInitializing")
            style = "green" if healthy else "yellow" if waiting else "red"
            out.append(f"  pod {pod.name}  ")
            out.append(pod.status, style=style)
            out.append(f"  {pod.ready}  restarts {pod.restarts}  {pod.age}\n")
        for service in row.services:
            out.append(f"  service {service}\n")
        for route in row.routes:
            out.append(f"  route {route}\n")
        if row.error:
            out.append("  last error: ", style="red")
            out.append(row.error + "\n")
    return out


@dataclass
class Snapshot:
    objects: dict[str, list[dict[str, Any]]]
    log_tails: dict[str, str]


def fetch(client: Any, namespace: str | None, tails: dict[tuple[str, str, int], str]) -> Snapshot:
    """One list per kind, and the previous run's last lines of each crash-looping container
    (fetched once per restart, kept in `tails`)."""
    objects: dict[str, list[dict[str, Any]]] = {}
    for kind in WATCHED_KINDS:
        res = BY_KIND[kind]
        objects[kind] = client.list(res, namespace)["items"]
    log_tails: dict[str, str] = {}
    for ns, pod, container, restarts in crash_looping(objects):
        key = (f"{ns}/{pod}", container, restarts)
        if key not in tails:
            try:
                raw = client.request(
                    "GET",
                    f"/api/v1/namespaces/{ns}/pods/{pod}/log",
                    query={"container": container, "previous": "true", "tailLines": "5"},
                    accept="text/plain",
                )
                tails[key] = raw if isinstance(raw, str) else str(raw or "")
            except Exception:  # the previous run may already be gone: no tail then
                tails[key] = ""
        log_tails[pod] = tails[key]
    return Snapshot(objects, log_tails)


def watch(
    client: Any, namespace: str | None, draw: Callable[[Snapshot], None], stop: threading.Event, refresh: float = 2.0
) -> None:
    """Redraw on every change the watches report (debounced), and every `refresh` seconds for AGE."""
    changed = threading.Event()

    def follow(kind: str) -> None:
        res = BY_KIND[kind]
        while not stop.is_set():
            try:
                version = client.list(res, namespace)["metadata"].get("resourceVersion", "")
                for _ in client.stream(
                    res.base_path(namespace),
                    {"watch": "true", "resourceVersion": version, "allowWatchBookmarks": "false"},
                ):
                    changed.set()
                    if stop.is_set():
                        return
            except Exception:  # a dropped watch (410, the API restarting): start again shortly
                stop.wait(1.0)

    for kind in WATCHED_KINDS:
        threading.Thread(target=follow, args=(kind,), daemon=True, name=f"watch-{kind}").start()
    tails: dict[tuple[str, str, int], str] = {}
    while not stop.is_set():
        draw(fetch(client, namespace, tails))
        changed.wait(refresh)
        if changed.is_set():
            time.sleep(0.1)  # one redraw for a burst of changes
            changed.clear()
