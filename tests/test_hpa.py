"""The HorizontalPodAutoscaler's arithmetic, table-driven over (usage, pods, history, clock),
and the Metrics API's answers: no Docker, no waiting."""

from __future__ import annotations

from typing import Any

import pytest

from mikro.api import metrics as metrics_api
from mikro.controllers.hpa import plan, status_of
from mikro.errors import ApiError
from mikro.node.metrics import Sample, Usage, cpu_nanocores, parse_stat_file, pod_metrics, working_set


def hpa(target: int = 50, minimum: int = 1, maximum: int = 10, down_window: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "minReplicas": minimum,
        "maxReplicas": maximum,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}},
            }
        ],
    }
    if down_window is not None:
        spec["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": down_window}}
    return {"metadata": {"name": "web", "namespace": "default", "uid": "u"}, "spec": spec}


def pods(n: int, request: str | None = "100m") -> list[dict[str, Any]]:
    resources = {"requests": {"cpu": request}} if request else {}
    return [
        {
            "metadata": {"name": f"web-{i}"},
            "spec": {"containers": [{"name": "c", "resources": resources}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
        for i in range(n)
    ]


def usage(n: int, millicores: int) -> dict[str, dict[str, Any]]:
    return {
        f"web-{i}": {"containers": [{"name": "c", "usage": {"cpu": f"{millicores * 1_000_000}n", "memory": "1Mi"}}]}
        for i in range(n)
    }


@pytest.mark.parametrize(
    ("current", "millicores", "expected", "limited"),
    [
        (1, 100, 2, None),  # 100% of request against 50%: twice the pods
        (2, 53, 2, None),  # 106% of target: within the 10% tolerance, no change
        (1, 1000, 5, "ScaleUpLimit"),  # 20x wanted; one period allows +100% or +4 pods: 5
        (4, 1000, 8, "ScaleUpLimit"),  # +100% beats +4 at 4 pods
        (8, 1000, 10, "TooManyReplicas"),
        (3, 0, 1, "TooFewReplicas"),  # no load: down to the minimum (stabilization aside)
    ],
)
def test_recommendations_tolerance_policies_and_bounds(
    current: int, millicores: int, expected: int, limited: str | None
) -> None:
    result = plan(hpa(down_window=0), current, pods(current), usage(current, millicores), [], now=1000.0)
    assert (result.desired, result.limited) == (expected, limited)


def test_scale_down_waits_for_its_stabilization_window() -> None:
    history = [(700.0, 4), (950.0, 4)]  # higher recommendations within the last 300 s
    quiet = plan(hpa(), 4, pods(4), usage(4, 0), history, now=1000.0)
    assert quiet.desired == 4 and quiet.recommendation == 0
    later = plan(hpa(), 4, pods(4), usage(4, 0), [(600.0, 4)], now=1000.0)  # out of the window
    assert later.desired == 1


def test_missing_requests_and_missing_metrics_stop_scaling_with_the_reason() -> None:
    no_request = plan(hpa(), 2, pods(2, request=None), usage(2, 100), [], now=0.0)
    assert no_request.desired == 2
    assert no_request.error == "failed to get cpu utilization: missing request for cpu in container c of Pod web-0"
    no_figures = plan(hpa(), 2, pods(2), {}, [], now=0.0)
    assert no_figures.desired == 2 and "no metrics returned from resource metrics API" in (no_figures.error or "")
    status = status_of(hpa(), 2, no_request, scaled=False, stamp="2026-11-27T00:00:00Z")
    active = next(c for c in status["conditions"] if c["type"] == "ScalingActive")
    assert (active["status"], active["reason"]) == ("False", "FailedGetResourceMetric")


def test_status_reports_the_current_utilization_and_the_rescale() -> None:
    result = plan(hpa(down_window=0), 1, pods(1), usage(1, 100), [], now=0.0)
    status = status_of(hpa(), 1, result, scaled=True, stamp="2026-11-27T00:00:00Z")
    assert status["desiredReplicas"] == 2 and status["lastScaleTime"] == "2026-11-27T00:00:00Z"
    assert status["currentMetrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "current": {"averageUtilization": 100, "averageValue": "100m"}},
        }
    ]
    assert result.reason == "cpu resource utilization (percentage of request) above target"


def test_cpu_is_a_rate_and_memory_the_working_set() -> None:
    assert cpu_nanocores(Sample(1_000_000_000, 0, 10.0), Sample(3_000_000_000, 0, 12.0)) == 1_000_000_000
    assert cpu_nanocores(Sample(5, 0, 10.0), Sample(1, 0, 12.0)) == 0  # a restart resets the counter
    assert working_set(10_000, parse_stat_file("total_inactive_file 4000\ncache 9\n")) == 6000
    assert working_set(10_000, {"inactive_file": 3000}) == 7000
    metric = pod_metrics("default", "web-0", {"app": "web"}, {"c": Usage(250_000_000, 2048 * 1024)}, 0.0, 10.0)
    assert metric["containers"] == [{"name": "c", "usage": {"cpu": "250000000n", "memory": "2048Ki"}}]


class Source:
    def __init__(self, serving: bool) -> None:
        self.on = serving

    def serving(self) -> bool:
        return self.on

    def list_pods(self, namespace: str | None) -> list[dict[str, Any]]:
        items = [
            pod_metrics("a", "p1", {"app": "x"}, {}, 0.0, 10.0),
            pod_metrics("b", "p2", {"app": "y"}, {}, 0.0, 10.0),
        ]
        return [i for i in items if namespace in (None, i["metadata"]["namespace"])]

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((p for p in self.list_pods(namespace) if p["metadata"]["name"] == name), None)

    def list_nodes(self) -> list[dict[str, Any]]:
        return [{"kind": "NodeMetrics", "metadata": {"name": "n", "labels": {}}}]


def test_metrics_api_paths_selectors_and_absence() -> None:
    base = "/apis/metrics.k8s.io/v1beta1"
    source = Source(True)
    assert [r["name"] for r in metrics_api.handle(source, base, {})["resources"]] == ["nodes", "pods"]
    assert [p["metadata"]["name"] for p in metrics_api.handle(source, base + "/pods", {})["items"]] == ["p1", "p2"]
    assert [
        p["metadata"]["name"] for p in metrics_api.handle(source, base + "/pods", {"labelSelector": "app=y"})["items"]
    ] == ["p2"]
    assert metrics_api.handle(source, base + "/namespaces/a/pods/p1", {})["metadata"]["name"] == "p1"
    assert metrics_api.handle(source, base + "/nodes/n", {})["kind"] == "NodeMetrics"
    with pytest.raises(ApiError) as missing:
        metrics_api.handle(source, base + "/namespaces/a/pods/nope", {})
    assert missing.value.code == 404
    with pytest.raises(ApiError):
        metrics_api.handle(Source(False), base + "/pods", {})  # addon disabled: as without metrics-server


def test_bad_autoscalers_are_refused_with_kubernetes_wording() -> None:
    from mikro.api.validation import validate

    def errors(**spec: Any) -> list[str]:
        obj = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "default"},
               "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3, **spec}}
        return [str(e) for e in validate(obj)]

    assert errors() == []
    assert any("spec.maxReplicas" in e and "greater than or equal to 1" in e for e in errors(maxReplicas=0))
    assert any("spec.maxReplicas" in e and "minReplicas" in e for e in errors(minReplicas=5))
    bad_metric = [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]
    assert any("averageUtilization" in e for e in errors(metrics=bad_metric))
