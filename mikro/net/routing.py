"""Which pods traffic reaches: the `io.mikro/Routed` pod condition. Pure.

A pod is routed when every NGINX that should send it traffic (the proxy of each Service whose
Endpoints list it as ready, and the ingress when an Ingress sends to such a Service) runs a
configuration with its address. The network controller writes the condition on the pod, as
the controllers behind a readiness gate do (AWS' `target-health.elbv2.k8s.aws/...`), and
`mikro apply --wait` waits for it: a ready pod is not yet one that answers.
"""

from __future__ import annotations

from typing import Any

from mikro.config import LABEL_PREFIX

ROUTED = LABEL_PREFIX + "Routed"
Obj = dict[str, Any]
PodKey = tuple[str, str, str]  # (namespace, name, uid)


def carriers(services: list[Obj], ingress_services: set[str] | None) -> dict[str, set[str]]:
    """Each configuration ("ns/name" of a Service proxy, "ingress") -> the Endpoints
    ("ns/name") whose ready addresses it must carry: a Service with a cluster IP has a proxy;
    the ingress carries the Services its Ingresses send to (None: no ingress)."""
    out: dict[str, set[str]] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        if spec.get("clusterIP") in (None, "", "None") or spec.get("type") == "ExternalName":
            continue
        key = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
        out[key] = {key}
    if ingress_services is not None:
        out["ingress"] = set(ingress_services)
    return out


def pods_routed(endpoints: list[Obj], carried: dict[str, set[str]], running: dict[str, set[str]]) -> dict[PodKey, bool]:
    """Each pod the Endpoints name: True when every configuration meant to carry its address
    (`carried`, see `carriers`) carries it in the one NGINX runs (`running`: configuration ->
    addresses); False for not-ready addresses. A pod named by several Endpoints is routed
    only when routed through all of them."""
    by_endpoints: dict[str, list[str]] = {}
    for conf, names in carried.items():
        for name in names:
            by_endpoints.setdefault(name, []).append(conf)
    out: dict[PodKey, bool] = {}
    for ep in endpoints:
        confs = by_endpoints.get(f"{ep['metadata']['namespace']}/{ep['metadata']['name']}", [])
        for subset in ep.get("subsets") or []:
            for field in ("addresses", "notReadyAddresses"):
                for address in subset.get(field) or []:
                    ref = address.get("targetRef") or {}
                    if ref.get("kind") != "Pod" or not ref.get("name"):
                        continue
                    key = (ref.get("namespace") or ep["metadata"]["namespace"], ref["name"], ref.get("uid") or "")
                    ip = address.get("ip")
                    ok = field == "addresses" and all(ip in running.get(conf, ()) for conf in confs)
                    out[key] = out.get(key, True) and ok
    return out


def with_condition(pod: Obj, routed: bool, now: str) -> Obj | None:
    """The pod's status with the condition set, or None when it already says so. A pod that
    never was routed gets no False condition (nothing to say until it is)."""
    status = pod.get("status") or {}
    conditions = list(status.get("conditions") or [])
    current = next((c for c in conditions if c.get("type") == ROUTED), None)
    want = "True" if routed else "False"
    if current is None and not routed:
        return None
    if current is not None and current.get("status") == want:
        return None
    condition: Obj = {"type": ROUTED, "status": want, "lastProbeTime": None, "lastTransitionTime": now}
    if not routed:
        condition["reason"] = "NotRouted"
        condition["message"] = "no longer in every proxy and ingress configuration that should send it traffic"
    conditions = [c for c in conditions if c.get("type") != ROUTED] + [condition]
    return {**status, "conditions": conditions}


def is_routed(pod: Obj) -> bool:
    return any(
        c.get("type") == ROUTED and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or []
    )


def selected(pod: Obj, services: list[Obj]) -> bool:
    """Whether a Service of the pod's namespace selects it and resolves its target ports on
    it (its Endpoints will list it, as the Endpoints controller lists only such pods)."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    named = {
        p.get("name")
        for c in (pod.get("spec") or {}).get("containers") or []
        for p in c.get("ports") or []
        if p.get("name")
    }
    for svc in services:
        if (svc.get("metadata") or {}).get("namespace") != meta.get("namespace"):
            continue
        spec = svc.get("spec") or {}
        selector = spec.get("selector") or {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            continue
        targets = [p.get("targetPort", p.get("port")) for p in spec.get("ports") or []]
        if all(not isinstance(t, str) or t.isdigit() or t in named for t in targets):
            return True
    return False
