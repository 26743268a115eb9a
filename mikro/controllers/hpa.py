"""The HorizontalPodAutoscaler controller (autoscaling/v2), for CPU and memory Resource metrics.

As kube-controller-manager's podautoscaler: every sync period, the average utilization of the
target's ready pods (usage over requests, from the Metrics API) against the target gives a
ratio; outside a 10% tolerance the recommendation is ceil(ratio x ready pods). Recommendations
are stabilized (scale-down looks back over its window, 300 s by default; scale-up over its own,
0 s) and limited by the scaling policies (defaults: up by 100% or 4 pods per 15 s, whichever is
more; down by 100% per 15 s), then bounded by min/maxReplicas. Status and events read as
Kubernetes writes them. `plan` is pure; `HPAController` reads and writes through the registry.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.validation import parse_quantity
from mikro.errors import ApiError

log = logging.getLogger("mikro.controllers.hpa")

HPA = BY_KIND["HorizontalPodAutoscaler"]
SYNC_SECONDS = 5.0
TOLERANCE = 0.1
DEFAULT_DOWN_WINDOW = 300
UNITS = {"cpu": "cpu resource utilization (percentage of request)",
         "memory": "memory resource utilization (percentage of request)"}

PodMetrics = Callable[[str, dict[str, str]], dict[str, dict[str, Any]]]  # (ns, selector) -> pod name -> PodMetrics


@dataclass
class MetricResult:
    resource: str
    utilization: int | None  # percent of request, when the target is a Utilization
    average: float  # per-pod usage (millicores or bytes)
    ratio: float
    ready_pods: int


@dataclass
class Plan:
    desired: int
    metrics: list[MetricResult] = field(default_factory=list)
    error: str | None = None  # why no metric could be read (ScalingActive False)
    limited: str | None = None  # TooFewReplicas / TooManyReplicas / ScaleUpLimit ...
    reason: str = ""  # the rescale reason for the event
    recommendation: int = 0  # before stabilization and limits: what later passes look back on


def _usage(container: dict[str, Any], resource: str) -> float:
    value = parse_quantity((container.get("usage") or {}).get(resource, "0"))
    return value * 1000 if resource == "cpu" else value  # cpu in millicores


def _request(container: dict[str, Any], resource: str) -> float | None:
    raw = ((container.get("resources") or {}).get("requests") or {}).get(resource)
    if raw is None:
        return None
    value = parse_quantity(raw)
    return value * 1000 if resource == "cpu" else value


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def measure(metric: dict[str, Any], pods: list[dict[str, Any]], metrics: dict[str, dict[str, Any]],
            current: int) -> MetricResult | str:
    """One Resource metric over the ready pods that have figures; an error message otherwise."""
    spec = metric.get("resource") or {}
    resource, target = spec.get("name", ""), spec.get("target") or {}
    if metric.get("type") != "Resource" or resource not in ("cpu", "memory"):
        return f"metric type {metric.get('type')} {resource} is not supported by mikro (Resource cpu and memory are)"
    usage = requests = 0.0
    counted = 0
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp") or not pod_ready(pod):
            continue
        figures = metrics.get(pod["metadata"]["name"])
        if figures is None:
            continue
        by_name = {c["name"]: c for c in figures.get("containers") or []}
        for container in pod["spec"].get("containers") or []:
            request = _request(container, resource)
            if request is None and target.get("type") == "Utilization":
                return f"failed to get {resource} utilization: missing request for {resource} in container " \
                       f"{container['name']} of Pod {pod['metadata']['name']}"
            requests += request or 0
            usage += _usage(by_name.get(container["name"]) or {}, resource)
        counted += 1
    if counted == 0:
        return f"failed to get {resource} utilization: unable to get metrics for resource {resource}: no metrics returned from resource metrics API"
    average = usage / counted
    if target.get("type") == "Utilization":
        utilization = int(round(100 * usage / requests)) if requests else 0
        ratio = utilization / max(int(target.get("averageUtilization") or 0), 1)
        return MetricResult(resource, utilization, average, ratio, counted)
    wanted = parse_quantity(target.get("averageValue", "0")) * (1000 if resource == "cpu" else 1)
    return MetricResult(resource, None, average, average / wanted if wanted else 0.0, counted)


def _policy_limit(rules: dict[str, Any] | None, current: int, up: bool) -> int:
    """The furthest the policies allow in one period (default policies when none are given)."""
    policies = (rules or {}).get("policies")
    if not policies:
        policies = ([{"type": "Percent", "value": 100}, {"type": "Pods", "value": 4}] if up
                    else [{"type": "Percent", "value": 100}])
    select = (rules or {}).get("selectPolicy", "Max")
    if select == "Disabled":
        return current
    limits = []
    for p in policies:
        change = math.ceil(current * p["value"] / 100) if p.get("type") == "Percent" else int(p["value"])
        limits.append(current + change if up else current - change)
    if up:
        return max(limits) if select == "Max" else min(limits)
    return min(limits) if select == "Max" else max(limits)


def plan(hpa: dict[str, Any], current: int, pods: list[dict[str, Any]], metrics: dict[str, dict[str, Any]],
         history: list[tuple[float, int]], now: float) -> Plan:
    spec = hpa.get("spec") or {}
    minimum, maximum = int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])
    behavior = spec.get("behavior") or {}
    results: list[MetricResult] = []
    errors: list[str] = []
    for metric in spec.get("metrics") or [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]:
        outcome = measure(metric, pods, metrics, current)
        (errors.append if isinstance(outcome, str) else results.append)(outcome)  # type: ignore[arg-type]
    if not results:
        return Plan(current, error=errors[0] if errors else "no metrics")
    # Each metric proposes a size; the largest wins (as upstream, so no metric is starved).
    proposals = [(current if abs(r.ratio - 1.0) <= TOLERANCE else math.ceil(r.ratio * r.ready_pods), r)
                 for r in results]
    recommendation, leading = max(proposals, key=lambda p: p[0])
    reason = f"{UNITS[leading.resource]} {'above' if recommendation > current else 'below'} target"
    # Stabilization: the most cautious recommendation within each window wins.
    up_window = int((behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds", 0))
    down_window = int((behavior.get("scaleDown") or {}).get("stabilizationWindowSeconds", DEFAULT_DOWN_WINDOW))
    up, down = recommendation, recommendation
    for stamp, value in history:
        if stamp > now - up_window:
            up = min(up, value)
        if stamp > now - down_window:
            down = max(down, value)
    desired = current
    if desired < up:
        desired = up
    if desired > down:
        desired = down
    limited = None
    if desired > current:
        ceiling = _policy_limit(behavior.get("scaleUp"), current, up=True)
        if desired > ceiling:
            desired, limited = ceiling, "ScaleUpLimit"
    elif desired < current:
        floor = _policy_limit(behavior.get("scaleDown"), current, up=False)
        if desired < floor:
            desired, limited = floor, "ScaleDownLimit"
    if desired > maximum:
        desired, limited = maximum, "TooManyReplicas"
    elif desired < minimum:
        desired, limited = minimum, "TooFewReplicas"
    return Plan(desired, results, None, limited, reason, recommendation)


def _condition(kind: str, status: str, reason: str, message: str, old: list[dict[str, Any]], stamp: str) -> dict[str, Any]:
    previous = next((c for c in old if c.get("type") == kind), None)
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == status else stamp
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}


def status_of(hpa: dict[str, Any], current: int, result: Plan, scaled: bool, stamp: str) -> dict[str, Any]:
    old = hpa.get("status") or {}
    conditions = old.get("conditions") or []
    status: dict[str, Any] = {"currentReplicas": current, "desiredReplicas": result.desired}
    if scaled:
        status["lastScaleTime"] = stamp
    elif old.get("lastScaleTime"):
        status["lastScaleTime"] = old["lastScaleTime"]
    status["currentMetrics"] = [
        {"type": "Resource", "resource": {"name": r.resource, "current": {
            **({"averageUtilization": r.utilization} if r.utilization is not None else {}),
            "averageValue": f"{int(r.average)}m" if r.resource == "cpu" else str(int(r.average))}}}
        for r in result.metrics
    ]
    able = _condition("AbleToScale", "True", "SucceededRescale" if scaled else "ReadyForNewScale",
                      "the HPA controller was able to update the target scale" if scaled
                      else "recommended size matches current size", conditions, stamp)
    if result.error:
        active = _condition("ScalingActive", "False", "FailedGetResourceMetric",
                            f"the HPA was unable to compute the replica count: {result.error}", conditions, stamp)
    else:
        active = _condition("ScalingActive", "True", "ValidMetricFound",
                            "the HPA was able to successfully calculate a replica count from "
                            f"{result.metrics[0].resource} resource utilization (percentage of request)", conditions, stamp)
    if result.limited in ("TooManyReplicas", "TooFewReplicas"):
        limited = _condition("ScalingLimited", "True", result.limited,
                             "the desired replica count is " + ("more than the maximum replica count"
                                                                if result.limited == "TooManyReplicas"
                                                                else "less than the minimum replica count"),
                             conditions, stamp)
    else:
        limited = _condition("ScalingLimited", "False", "DesiredWithinRange",
                             "the desired count is within the acceptable range", conditions, stamp)
    status["conditions"] = [able, active, limited]
    return status


class HPAController:
    """Runs `plan` for every HorizontalPodAutoscaler each sync period and writes the scale."""

    def __init__(self, registry: Registry, pod_metrics: PodMetrics, clock: Callable[[], float] = time.monotonic,
                 period: float = SYNC_SECONDS) -> None:
        self.registry, self.pod_metrics, self.clock, self.period = registry, pod_metrics, clock, period
        self.history: dict[str, list[tuple[float, int]]] = {}  # hpa uid -> (time, recommendation)
        self.stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="hpa", daemon=True).start()

    def _loop(self) -> None:
        while not self.stop.wait(self.period):
            try:
                self.sync_all()
            except Exception:  # a controller bug must not end the loop
                log.exception("hpa pass failed")

    def sync_all(self) -> None:
        hpas, _ = self.registry.list(HPA)
        alive = set()
        for hpa in hpas:
            alive.add(hpa["metadata"]["uid"])
            try:
                self.sync(hpa)
            except ApiError as err:
                if err.code not in (404, 409):
                    log.warning("hpa %s: %s", hpa["metadata"]["name"], err.message)
        for uid in set(self.history) - alive:
            del self.history[uid]

    def sync(self, hpa: dict[str, Any]) -> None:
        ns = hpa["metadata"]["namespace"]
        ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        target_res = BY_KIND.get(ref.get("kind", ""))
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if target_res is None or target_res.kind not in ("Deployment", "ReplicaSet", "StatefulSet"):
            self.registry.record_event(hpa, "FailedGetScale", f"the scale target kind {ref.get('kind')!r} is not "
                                       "supported (Deployment, ReplicaSet, StatefulSet)", "Warning")
            return
        target = self.registry.store.find(target_res, ns, ref.get("name", ""))
        if target is None:
            self.registry.record_event(hpa, "FailedGetScale", f'{target_res.plural}.{target_res.group} '
                                       f'"{ref.get("name")}" not found', "Warning")
            return
        current = int((target.get("spec") or {}).get("replicas", 1))
        selector = ((target.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        pods = [p for p in self.registry.list(BY_KIND["Pod"], ns)[0]
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        now = self.clock()
        uid = hpa["metadata"]["uid"]
        history = self.history.setdefault(uid, [])
        result = plan(hpa, current, pods, self.pod_metrics(ns, selector), history, now)
        if result.error is None:
            history.append((now, result.recommendation))
            window = max(DEFAULT_DOWN_WINDOW, int(((hpa["spec"].get("behavior") or {}).get("scaleDown") or {})
                                                  .get("stabilizationWindowSeconds", 0)))
            self.history[uid] = [(t, v) for t, v in history if t > now - window]
        scaled = result.error is None and result.desired != current
        if scaled:
            self.registry.patch(target_res, ns, target["metadata"]["name"], "application/merge-patch+json",
                                {"spec": {"replicas": result.desired}}, subresource="scale")
            self.registry.record_event(hpa, "SuccessfulRescale", f"New size: {result.desired}; reason: {result.reason}")
        elif result.error:
            self.registry.record_event(hpa, "FailedGetResourceMetric", result.error, "Warning")
        status = status_of(hpa, current, result, scaled, stamp)
        if status != hpa.get("status"):
            fresh = self.registry.store.get(HPA, ns, hpa["metadata"]["name"])
            fresh["status"] = status
            self.registry.store.update(HPA, fresh, status_only=True)

