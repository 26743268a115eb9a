"""Defaulting, as the API server does before it stores an object. Pure."""

from __future__ import annotations

import base64
from typing import Any

from mikro.api import batch, storage


def image_pull_policy(image: str) -> str:
    """Kubernetes' default: Always for `:latest` or no tag, IfNotPresent otherwise."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _container(ctr: dict[str, Any]) -> None:
    ctr.setdefault("imagePullPolicy", image_pull_policy(str(ctr.get("image", ""))))
    ctr.setdefault("terminationMessagePath", "/dev/termination-log")
    ctr.setdefault("terminationMessagePolicy", "File")
    ctr.setdefault("resources", {})
    for port in ctr.get("ports") or []:
        port.setdefault("protocol", "TCP")


def pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for ctr in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        _container(ctr)


def apply(obj: dict[str, Any]) -> dict[str, Any]:
    kind = obj.get("kind")
    meta = obj.setdefault("metadata", {})
    spec = obj.get("spec")
    if kind not in ("Namespace", "Node", "PersistentVolume", "IngressClass", "StorageClass"):
        meta.setdefault("namespace", "default")
    if kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        from mikro.api import webhooks

        webhooks.default_config(obj)
    if kind == "Pod":
        pod_spec(obj.setdefault("spec", {}))
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "ReplicationController"):
        assert isinstance(spec, dict)
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        template = spec.setdefault("template", {})
        pod_spec(template.setdefault("spec", {}))
        if kind == "Deployment":
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxSurge", "25%")
                rolling.setdefault("maxUnavailable", "25%")
        if kind in ("StatefulSet", "DaemonSet"):
            apps_workload(kind, spec)
        if kind == "ReplicationController" and not spec.get("selector"):
            spec["selector"] = dict((template.get("metadata") or {}).get("labels") or {})
    elif kind == "HorizontalPodAutoscaler" and isinstance(spec, dict):
        spec.setdefault("minReplicas", 1)
        spec.setdefault("metrics", [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    elif kind in ("Job", "CronJob") and isinstance(spec, dict):
        job_spec = spec if kind == "Job" else (spec.get("jobTemplate") or {}).get("spec")
        template = (job_spec or {}).get("template") if isinstance(job_spec, dict) else None
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            pod_spec(template["spec"])
        batch.default_job(obj) if kind == "Job" else batch.default_cronjob(obj)
    elif kind == "StorageClass":
        storage.defaults_class(obj)
    elif kind == "Service":
        assert isinstance(spec, dict)
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {}) or {}
        obj["data"] = data
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    elif kind == "Namespace":
        # Go clients send the empty structs (`spec: {}`, `status: {}`): fill them as well.
        spec = obj["spec"] = obj.get("spec") or {}
        spec.setdefault("finalizers", ["kubernetes"])
        status = obj["status"] = obj.get("status") or {}
        status.setdefault("phase", "Active")
    return obj


def apps_workload(kind: str, spec: dict[str, Any]) -> None:
    """StatefulSet and DaemonSet defaults (so `rollout status` knows their strategy)."""
    spec.setdefault("revisionHistoryLimit", 10)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if kind == "StatefulSet":
        spec.setdefault("podManagementPolicy", "OrderedReady")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
        retention.setdefault("whenDeleted", "Retain")
        retention.setdefault("whenScaled", "Retain")
        for tpl in spec.get("volumeClaimTemplates") or []:
            if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
                tpl["spec"].setdefault("volumeMode", "Filesystem")
    elif strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)


def parse_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """maxSurge / maxUnavailable: an integer or a percentage of `total`."""
    if isinstance(value, str) and value.endswith("%"):
        fraction = int(value[:-1]) * total
        return -(-fraction // 100) if round_up else fraction // 100
    return int(value or 0)
