"""The Metrics API (`metrics.k8s.io/v1beta1`) as metrics-server serves it through aggregation:
NodeMetrics and PodMetrics, read by `kubectl top` and the HorizontalPodAutoscaler controller.

Served only while the metrics-server addon is enabled and has a first sample; until then the
group is absent from discovery, so that kubectl says `Metrics API not available` as it does on
a cluster without metrics-server.
"""

from __future__ import annotations

from typing import Any, Protocol

from mikro.api import selectors
from mikro.errors import ApiError

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
PREFIX = f"/apis/{GROUP}"


class MetricsSource(Protocol):
    def serving(self) -> bool: ...

    def list_pods(self, namespace: str | None) -> list[dict[str, Any]]: ...

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list_nodes(self) -> list[dict[str, Any]]: ...


def group_version() -> dict[str, str]:
    return {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}


def api_group() -> dict[str, Any]:
    return {"name": GROUP, "versions": [group_version()], "preferredVersion": group_version()}


def resource_list() -> dict[str, Any]:
    verbs = ["get", "list"]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{GROUP}/{VERSION}",
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": verbs},
            {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": verbs},
        ],
    }


def _list(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": f"{GROUP}/{VERSION}", "metadata": {}, "items": items}


def handle(source: MetricsSource | None, path: str, query: dict[str, str]) -> dict[str, Any]:
    """The answer for a GET under /apis/metrics.k8s.io (ApiError when there is none)."""
    if source is None or not source.serving():
        raise ApiError(404, "the server could not find the requested resource (metrics.k8s.io: "
                            "enable the metrics-server addon)")
    parts = [p for p in path[len(PREFIX):].split("/") if p]
    if not parts:
        return {"kind": "APIGroup", "apiVersion": "v1", **api_group()}
    if parts[0] != VERSION:
        raise ApiError(404, "the server could not find the requested resource")
    rest = parts[1:]
    if not rest:
        return resource_list()
    matches = selectors.parse_label_selector(query.get("labelSelector"))

    def selected(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [i for i in items if matches(i["metadata"].get("labels") or {})]

    if rest[0] == "nodes":
        nodes = selected(source.list_nodes())
        if len(rest) == 1:
            return _list("NodeMetricsList", nodes)
        found = next((n for n in nodes if n["metadata"]["name"] == rest[1]), None)
        if found is None:
            raise ApiError(404, f'nodemetrics.metrics.k8s.io "{rest[1]}" not found', "NotFound")
        return found
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if rest[0] != "pods":
        raise ApiError(404, "the server could not find the requested resource")
    if len(rest) == 1:
        return _list("PodMetricsList", selected(source.list_pods(namespace)))
    pod = source.get_pod(namespace or "default", rest[1])
    if pod is None:
        raise ApiError(404, f'podmetrics.metrics.k8s.io "{namespace or "default"}/{rest[1]}" not found', "NotFound")
    return pod
