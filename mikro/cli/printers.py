"""kubectl's table columns, computed from objects. Pure.

The API server serves these as `meta.k8s.io/v1` Tables (so real kubectl shows the same
columns), and mikro's own CLI prints them.
"""

from __future__ import annotations

import functools
import time
from calendar import timegm
from collections.abc import Callable
from typing import Any

from mikro.cli.layout import format_table  # noqa: F401 - printers.format_table, as before

Cell = Any
Column = tuple[str, int, Callable[[dict[str, Any]], Cell]]  # header, priority (1 = wide), value


def parse_time(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return _parse_second(stamp[:19])


@functools.lru_cache(maxsize=4096)
def _parse_second(text: str) -> float | None:
    # (strptime costs ~50 us, most of a Table row's time; a list's stamps share their seconds)
    try:
        return float(timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """kubectl's HumanDuration (k8s.io/apimachinery/pkg/util/duration)."""
    if seconds < -1:
        return "<invalid>"
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        return f"{h // 8760}y{(h % 8760) // 24}d"
    return f"{h // 8760}y"


def age(stamp: str | None, now: float | None = None) -> str:
    t = parse_time(stamp)
    if t is None:
        return "<unknown>"
    return human_duration((now or time.time()) - t)


def _meta(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("metadata") or {}


def _name(o: dict[str, Any]) -> str:
    return _meta(o).get("name", "")


def _age(o: dict[str, Any]) -> str:
    return age(_meta(o).get("creationTimestamp"))


def pod_status(pod: dict[str, Any]) -> tuple[str, int, int, int, str | None]:
    """(STATUS, ready containers, total containers, restarts, last restart time) as kubectl's printPod."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    total = len(spec.get("containers") or [])
    ready = restarts = 0
    last_restart: str | None = None
    for init_index, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount", 0)
        state = cs.get("state") or {}
        term = state.get("terminated")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            reason = "Init:" + (term.get("reason") or f"ExitCode:{term.get('exitCode')}")
        elif (state.get("waiting") or {}).get("reason") not in (None, "PodInitializing"):
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{init_index}/{len(spec.get('initContainers') or [])}"
        break
    else:
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount", 0)
            last = (cs.get("lastState") or {}).get("terminated") or {}
            if last.get("finishedAt") and (last_restart is None or last["finishedAt"] > last_restart):
                last_restart = last["finishedAt"]
            state = cs.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif (state.get("terminated") or {}).get("reason"):
                reason = state["terminated"]["reason"]
            elif state.get("terminated"):
                term = state["terminated"]
                reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode')}"
            elif "running" in state:
                has_running = True
                if cs.get("ready"):
                    ready += 1
        if reason == "Completed" and has_running:
            reason = "Running"
    if _meta(pod).get("deletionTimestamp"):
        reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def _pod_restarts(pod: dict[str, Any]) -> str:
    _, _, _, restarts, last = pod_status(pod)
    if restarts and last:
        return f"{restarts} ({age(last)} ago)"
    return str(restarts)


def _service_external(svc: dict[str, Any]) -> str:
    spec = svc.get("spec") or {}
    stype = spec.get("type", "ClusterIP")
    ips = list(spec.get("externalIPs") or [])
    if stype == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        ips += [i.get("ip") or i.get("hostname") for i in ingress]
        return ",".join(ips) if ips else "<pending>"
    if stype == "ExternalName":
        return spec.get("externalName", "")
    return ",".join(ips) if ips else "<none>"


def _service_ports(svc: dict[str, Any]) -> str:
    parts = []
    for p in (svc.get("spec") or {}).get("ports") or []:
        proto = p.get("protocol", "TCP")
        if p.get("nodePort"):
            parts.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            parts.append(f"{p.get('port')}/{proto}")
    return ",".join(parts) if parts else "<none>"


def _selector(selector: dict[str, Any] | None) -> str:
    if not selector:
        return "<none>"
    labels = (
        selector.get("matchLabels", selector)
        if "matchLabels" in selector or "matchExpressions" in selector
        else selector
    )
    parts = [f"{k}={v}" for k, v in (labels or {}).items() if isinstance(v, str)]
    for expr in selector.get("matchExpressions") or []:
        parts.append(f"{expr.get('key')} {expr.get('operator', '').lower()} ({','.join(expr.get('values') or [])})")
    return ",".join(parts) or "<none>"


def _containers(o: dict[str, Any]) -> tuple[str, str]:
    spec = ((o.get("spec") or {}).get("template") or {}).get("spec") or {}
    ctrs = spec.get("containers") or []
    return ",".join(c.get("name", "") for c in ctrs), ",".join(c.get("image", "") for c in ctrs)


def _ingress_hosts(ing: dict[str, Any]) -> str:
    hosts = [r.get("host") for r in (ing.get("spec") or {}).get("rules") or [] if r.get("host")]
    if not hosts:
        return "*"
    if len(hosts) > 4:
        return ",".join(hosts[:4]) + f" + {len(hosts) - 4} more..."
    return ",".join(hosts)


def _ingress_address(ing: dict[str, Any]) -> str:
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return ",".join(i.get("ip") or i.get("hostname", "") for i in lb)


def _endpoints(ep: dict[str, Any]) -> str:
    addrs = []
    for subset in ep.get("subsets") or []:
        for a in subset.get("addresses") or []:
            for p in subset.get("ports") or [{}]:
                addrs.append(f"{a.get('ip')}:{p.get('port')}" if p.get("port") else a.get("ip"))
    if not addrs:
        return "<none>"
    if len(addrs) > 3:
        return ",".join(addrs[:3]) + f" + {len(addrs) - 3} more..."
    return ",".join(addrs)


def _event_object(ev: dict[str, Any]) -> str:
    inv = ev.get("involvedObject") or {}
    return f"{str(inv.get('kind', '')).lower()}/{inv.get('name', '')}"


def _event_last_seen(ev: dict[str, Any]) -> str:
    return age(ev.get("lastTimestamp") or ev.get("eventTime") or _meta(ev).get("creationTimestamp"))


def _status(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("status") or {}


def _spec(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("spec") or {}


def _job_status(o: dict[str, Any]) -> str:
    """kubectl's printJob STATUS."""
    true = {c.get("type") for c in _status(o).get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in true:
        return "Complete"
    if "Failed" in true:
        return "Failed"
    if _meta(o).get("deletionTimestamp"):
        return "Terminating"
    for ctype in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if ctype in true:
            return ctype
    return "Running"


def _job_completions(o: dict[str, Any]) -> str:
    spec, succeeded = _spec(o), _status(o).get("succeeded", 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism", 0)
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(o: dict[str, Any]) -> str:
    start = parse_time(_status(o).get("startTime"))
    if start is None:
        return ""
    end = parse_time(_status(o).get("completionTime")) or time.time()
    return human_duration(end - start)


def _job_template_containers(o: dict[str, Any]) -> tuple[str, str]:
    return _containers({"spec": ((_spec(o).get("jobTemplate") or {}).get("spec") or {})})


ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _access_modes(modes: list[str] | None) -> str:
    return ",".join(ACCESS_MODES.get(m, m) for m in modes or [])


def _pv_claim(o: dict[str, Any]) -> str:
    ref = _spec(o).get("claimRef") or {}
    return f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("name") else ""


def _sc_name(o: dict[str, Any]) -> str:
    default = (_meta(o).get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    return _name(o) + (" (default)" if default else "")


def _node_selector(o: dict[str, Any]) -> str:
    labels = ((_spec(o).get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _controller_of(o: dict[str, Any]) -> str:
    for ref in _meta(o).get("ownerReferences") or []:
        if ref.get("controller"):
            group = (ref.get("apiVersion") or "").rpartition("/")[0]
            kind = str(ref.get("kind", "")).lower()
            return f"{kind}.{group}/{ref.get('name')}" if group else f"{kind}/{ref.get('name')}"
    return "<none>"


COLUMNS: dict[str, list[Column]] = {
    "Job": [
        ("NAME", 0, _name),
        ("STATUS", 0, _job_status),
        ("COMPLETIONS", 0, _job_completions),
        ("DURATION", 0, _job_duration),
        ("AGE", 0, _age),
        ("CONTAINERS", 1, lambda o: _containers(o)[0]),
        ("IMAGES", 1, lambda o: _containers(o)[1]),
        ("SELECTOR", 1, lambda o: _selector(_spec(o).get("selector"))),
    ],
    "CronJob": [
        ("NAME", 0, _name),
        ("SCHEDULE", 0, lambda o: _spec(o).get("schedule", "")),
        ("TIMEZONE", 0, lambda o: _spec(o).get("timeZone") or "<none>"),
        ("SUSPEND", 0, lambda o: "True" if _spec(o).get("suspend") else "False"),
        ("ACTIVE", 0, lambda o: len(_status(o).get("active") or [])),
        ("LAST SCHEDULE", 0, lambda o: age(_status(o).get("lastScheduleTime")) if _status(o).get("lastScheduleTime") else "<none>"),
        ("AGE", 0, _age),
        ("CONTAINERS", 1, lambda o: _job_template_containers(o)[0]),
        ("IMAGES", 1, lambda o: _job_template_containers(o)[1]),
        ("SELECTOR", 1, lambda o: "<none>"),
    ],
    "PersistentVolumeClaim": [
        ("NAME", 0, _name),
        ("STATUS", 0, lambda o: "Terminating" if _meta(o).get("deletionTimestamp") else _status(o).get("phase", "Pending")),
        ("VOLUME", 0, lambda o: _spec(o).get("volumeName", "")),
        ("CAPACITY", 0, lambda o: (_status(o).get("capacity") or {}).get("storage", "")),
        ("ACCESS MODES", 0, lambda o: _access_modes(_status(o).get("accessModes"))),
        ("STORAGECLASS", 0, lambda o: _spec(o).get("storageClassName") or ""),
        ("VOLUMEATTRIBUTESCLASS", 0, lambda o: _spec(o).get("volumeAttributesClassName") or "<unset>"),
        ("AGE", 0, _age),
        ("VOLUMEMODE", 1, lambda o: _spec(o).get("volumeMode", "Filesystem")),
    ],
    "PersistentVolume": [
        ("NAME", 0, _name),
        ("CAPACITY", 0, lambda o: (_spec(o).get("capacity") or {}).get("storage", "")),
        ("ACCESS MODES", 0, lambda o: _access_modes(_spec(o).get("accessModes"))),
        ("RECLAIM POLICY", 0, lambda o: _spec(o).get("persistentVolumeReclaimPolicy", "Retain")),
        ("STATUS", 0, lambda o: "Terminating" if _meta(o).get("deletionTimestamp") else _status(o).get("phase", "Pending")),
        ("CLAIM", 0, _pv_claim),
        ("STORAGECLASS", 0, lambda o: _spec(o).get("storageClassName") or ""),
        ("VOLUMEATTRIBUTESCLASS", 0, lambda o: _spec(o).get("volumeAttributesClassName") or "<unset>"),
        ("REASON", 0, lambda o: _status(o).get("reason", "")),
        ("AGE", 0, _age),
        ("VOLUMEMODE", 1, lambda o: _spec(o).get("volumeMode", "Filesystem")),
    ],
    "StorageClass": [
        ("NAME", 0, _sc_name),
        ("PROVISIONER", 0, lambda o: o.get("provisioner", "")),
        ("RECLAIMPOLICY", 0, lambda o: o.get("reclaimPolicy", "Delete")),
        ("VOLUMEBINDINGMODE", 0, lambda o: o.get("volumeBindingMode", "Immediate")),
        ("ALLOWVOLUMEEXPANSION", 0, lambda o: "true" if o.get("allowVolumeExpansion") else "false"),
        ("AGE", 0, _age),
    ],
    "Pod": [
        ("NAME", 0, _name),
        ("READY", 0, lambda o: "{1}/{2}".format(*pod_status(o))),
        ("STATUS", 0, lambda o: pod_status(o)[0]),
        ("RESTARTS", 0, _pod_restarts),
        ("AGE", 0, _age),
        ("IP", 1, lambda o: _status(o).get("podIP") or "<none>"),
        ("NODE", 1, lambda o: _spec(o).get("nodeName") or "<none>"),
        ("NOMINATED NODE", 1, lambda o: "<none>"),
        ("READINESS GATES", 1, lambda o: "<none>"),
    ],
    "Deployment": [
        ("NAME", 0, _name),
        ("READY", 0, lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 0)}"),
        ("UP-TO-DATE", 0, lambda o: _status(o).get("updatedReplicas", 0)),
        ("AVAILABLE", 0, lambda o: _status(o).get("availableReplicas", 0)),
        ("AGE", 0, _age),
        ("CONTAINERS", 1, lambda o: _containers(o)[0]),
        ("IMAGES", 1, lambda o: _containers(o)[1]),
        ("SELECTOR", 1, lambda o: _selector(_spec(o).get("selector"))),
    ],
    "ReplicaSet": [
        ("NAME", 0, _name),
        ("DESIRED", 0, lambda o: _spec(o).get("replicas", 0)),
        ("CURRENT", 0, lambda o: _status(o).get("replicas", 0)),
        ("READY", 0, lambda o: _status(o).get("readyReplicas", 0)),
        ("AGE", 0, _age),
        ("CONTAINERS", 1, lambda o: _containers(o)[0]),
        ("IMAGES", 1, lambda o: _containers(o)[1]),
        ("SELECTOR", 1, lambda o: _selector(_spec(o).get("selector"))),
    ],
    "StatefulSet": [
        ("NAME", 0, _name),
        ("READY", 0, lambda o: f"{_status(o).get('readyReplicas', 0)}/{_spec(o).get('replicas', 0)}"),
        ("AGE", 0, _age),
        ("CONTAINERS", 1, lambda o: _containers(o)[0]),
        ("IMAGES", 1, lambda o: _containers(o)[1]),
    ],
    "DaemonSet": [
        ("NAME", 0, _name),
        ("DESIRED", 0, lambda o: _status(o).get("desiredNumberScheduled", 0)),
        ("CURRENT", 0, lambda o: _status(o).get("currentNumberScheduled", 0)),
        ("READY", 0, lambda o: _status(o).get("numberReady", 0)),
        ("UP-TO-DATE", 0, lambda o: _status(o).get("updatedNumberScheduled", 0)),
        ("AVAILABLE", 0, lambda o: _status(o).get("numberAvailable", 0)),
        ("NODE SELECTOR", 0, _node_selector),
        ("AGE", 0, _age),
        ("CONTAINERS", 1, lambda o: _containers(o)[0]),
        ("IMAGES", 1, lambda o: _containers(o)[1]),
        ("SELECTOR", 1, lambda o: _selector(_spec(o).get("selector"))),
    ],
    "ControllerRevision": [
        ("NAME", 0, _name),
        ("CONTROLLER", 0, _controller_of),
        ("REVISION", 0, lambda o: o.get("revision", 0)),
        ("AGE", 0, _age),
    ],
    "Service": [
        ("NAME", 0, _name),
        ("TYPE", 0, lambda o: _spec(o).get("type", "ClusterIP")),
        ("CLUSTER-IP", 0, lambda o: _spec(o).get("clusterIP") or "<none>"),
        ("EXTERNAL-IP", 0, _service_external),
        ("PORT(S)", 0, _service_ports),
        ("AGE", 0, _age),
        ("SELECTOR", 1, lambda o: _selector(_spec(o).get("selector"))),
    ],
    "Ingress": [
        ("NAME", 0, _name),
        ("CLASS", 0, lambda o: _spec(o).get("ingressClassName") or "<none>"),
        ("HOSTS", 0, _ingress_hosts),
        ("ADDRESS", 0, _ingress_address),
        ("PORTS", 0, lambda o: "80, 443" if _spec(o).get("tls") else "80"),
        ("AGE", 0, _age),
    ],
    "Endpoints": [("NAME", 0, _name), ("ENDPOINTS", 0, _endpoints), ("AGE", 0, _age)],
    "Namespace": [("NAME", 0, _name), ("STATUS", 0, lambda o: _status(o).get("phase", "Active")), ("AGE", 0, _age)],
    "ConfigMap": [
        ("NAME", 0, _name),
        ("DATA", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        ("AGE", 0, _age),
    ],
    "Secret": [
        ("NAME", 0, _name),
        ("TYPE", 0, lambda o: o.get("type", "Opaque")),
        ("DATA", 0, lambda o: len(o.get("data") or {})),
        ("AGE", 0, _age),
    ],
    "Event": [
        ("LAST SEEN", 0, _event_last_seen),
        ("TYPE", 0, lambda o: o.get("type", "")),
        ("REASON", 0, lambda o: o.get("reason", "")),
        ("OBJECT", 0, _event_object),
        ("MESSAGE", 0, lambda o: o.get("message", "")),
    ],
    "CustomResourceDefinition": [
        ("NAME", 0, _name),
        ("CREATED AT", 0, lambda o: _meta(o).get("creationTimestamp", "")),
    ],
    "IngressClass": [
        ("NAME", 0, _name),
        ("CONTROLLER", 0, lambda o: _spec(o).get("controller", "")),
        ("PARAMETERS", 0, lambda o: "<none>"),
        ("AGE", 0, _age),
    ],
    "Node": [
        ("NAME", 0, _name),
        ("STATUS", 0, lambda o: _node_status(o)),
        ("ROLES", 0, lambda o: _node_roles(o)),
        ("AGE", 0, _age),
        ("VERSION", 0, lambda o: (_status(o).get("nodeInfo") or {}).get("kubeletVersion", "")),
    ],
}

def _node_status(o: dict[str, Any]) -> str:
    """kubectl's node STATUS: the Ready condition, then SchedulingDisabled when cordoned."""
    ready = [c for c in _status(o).get("conditions") or [] if c.get("type") == "Ready"]
    words = ["Ready" if ready and ready[0].get("status") == "True" else "NotReady" if ready else "Unknown"]
    if _spec(o).get("unschedulable"):
        words.append("SchedulingDisabled")
    return ",".join(words)


def _node_roles(o: dict[str, Any]) -> str:
    """kubectl's ROLES: from `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels."""
    labels = o["metadata"].get("labels") or {}
    roles = {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1]}
    if labels.get("kubernetes.io/role"):
        roles.add(labels["kubernetes.io/role"])
    return ",".join(sorted(roles)) or "<none>"


def _hpa_targets(o: dict[str, Any]) -> str:
    """kubectl's TARGETS: `cpu: 12%/50%` for each Resource metric (`<unknown>` before a figure)."""
    current = {m.get("resource", {}).get("name"): m.get("resource", {}).get("current", {})
               for m in _status(o).get("currentMetrics") or []}
    out = []
    for metric in _spec(o).get("metrics") or []:
        resource = metric.get("resource") or {}
        name, target = resource.get("name"), resource.get("target") or {}
        now = current.get(name) or {}
        if target.get("type") == "Utilization":
            seen = f"{now['averageUtilization']}%" if "averageUtilization" in now else "<unknown>"
            out.append(f"{name}: {seen}/{target.get('averageUtilization')}%")
        else:
            out.append(f"{name}: {now.get('averageValue', '<unknown>')}/{target.get('averageValue')}")
    return ", ".join(out) or "<none>"


COLUMNS["ReplicationController"] = COLUMNS["ReplicaSet"]  # kubectl prints both alike
COLUMNS["MutatingWebhookConfiguration"] = COLUMNS["ValidatingWebhookConfiguration"] = [
    ("NAME", 0, _name),
    ("WEBHOOKS", 0, lambda o: len(o.get("webhooks") or [])),
    ("AGE", 0, _age),
]
COLUMNS["HorizontalPodAutoscaler"] = [
    ("NAME", 0, _name),
    ("REFERENCE", 0, lambda o: f"{_spec(o).get('scaleTargetRef', {}).get('kind')}/{_spec(o).get('scaleTargetRef', {}).get('name')}"),
    ("TARGETS", 0, _hpa_targets),
    ("MINPODS", 0, lambda o: _spec(o).get("minReplicas", 1)),
    ("MAXPODS", 0, lambda o: _spec(o).get("maxReplicas")),
    ("REPLICAS", 0, lambda o: _status(o).get("currentReplicas", 0)),
    ("AGE", 0, _age),
]

DEFAULT_COLUMNS: list[Column] = [("NAME", 0, _name), ("AGE", 0, _age)]


def columns_for(kind: str, wide: bool) -> list[Column]:
    cols = COLUMNS.get(kind, DEFAULT_COLUMNS)
    return [c for c in cols if wide or c[1] == 0]


def rows(kind: str, items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[str]]]:
    cols = columns_for(kind, wide)
    return [c[0] for c in cols], [[str(c[2](o)) for c in cols] for o in items]


def table(kind: str, items: list[dict[str, Any]], resource_version: str = "") -> dict[str, Any]:
    """A meta.k8s.io/v1 Table with every column (priority 1 is what `-o wide` adds)."""
    cols = COLUMNS.get(kind, DEFAULT_COLUMNS)
    definitions = []
    for header, priority, _ in cols:
        name = header.title() if header != "NAME" else "Name"
        definitions.append(
            {
                "name": name,
                "type": "string",
                "format": "name" if header == "NAME" else "",
                "description": "",
                "priority": priority,
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": [
            {
                "cells": [c[2](o) for c in cols],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata", {}),
                },
            }
            for o in items
        ],
    }


# The policy kinds' columns live in their own module, which fills COLUMNS on import.
from mikro.cli import printers_policy  # noqa: E402,F401
