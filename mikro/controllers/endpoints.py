"""The Endpoints controller: a Service's selected pods of its namespace, ready ones in
`addresses`, the others in `notReadyAddresses`, grouped by resolved target ports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mikro.api.resources import BY_KIND
from mikro.api.validation import selector_matches
from mikro.controllers.helpers import Api, Obj, guarded, pod_ready

POD, SVC, EP = BY_KIND["Pod"], BY_KIND["Service"], BY_KIND["Endpoints"]


def resolve_target_port(pod: Obj, target: Any) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for ctr in (pod.get("spec") or {}).get("containers") or []:
        for p in ctr.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    return None


def endpoint_subsets(svc: Obj, all_pods: list[Obj]) -> list[Obj]:
    """The Endpoints' subsets for a Service with a selector (pure)."""
    meta, spec = svc["metadata"], svc.get("spec") or {}
    selector = spec.get("selector") or {}
    ns = meta["namespace"]
    ports = spec.get("ports") or []
    groups: dict[tuple[tuple[str, int, str], ...], dict[str, list[Obj]]] = {}
    for pod in all_pods:
        pmeta = pod["metadata"]
        if pmeta["namespace"] != ns or pmeta.get("deletionTimestamp"):
            continue
        if not selector_matches({"matchLabels": selector}, pmeta.get("labels")):
            continue
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            continue
        resolved = []
        for p in ports:
            target = resolve_target_port(pod, p.get("targetPort", p.get("port")))
            if target is None:
                break
            resolved.append((p.get("name", ""), target, p.get("protocol", "TCP")))
        else:
            group = groups.setdefault(tuple(resolved), {"addresses": [], "notReadyAddresses": []})
            address: Obj = {
                "ip": ip,
                "nodeName": (pod.get("spec") or {}).get("nodeName"),
                "targetRef": {"kind": "Pod", "namespace": ns, "name": pmeta["name"], "uid": pmeta["uid"]},
            }
            hostname = (pod.get("spec") or {}).get("hostname")
            if hostname and (pod.get("spec") or {}).get("subdomain") == meta["name"]:
                address["hostname"] = hostname
            group["addresses" if pod_ready(pod) else "notReadyAddresses"].append(address)
    subsets = []
    for key, group in sorted(groups.items()):
        subset: Obj = {
            "ports": [
                {"name": n, "port": port, "protocol": proto} if n else {"port": port, "protocol": proto}
                for n, port, proto in key
            ]
        }
        for field in ("addresses", "notReadyAddresses"):
            if group[field]:
                subset[field] = sorted(group[field], key=lambda a: a["ip"])
        subsets.append(subset)
    return subsets


class EndpointsController:
    name = "endpoints"

    def sync(self, api: Api, now: datetime) -> None:
        pods = api.list(POD)
        for svc in api.list(SVC):
            guarded(self.sync_one, api, svc, pods)

    def sync_one(self, api: Api, svc: Obj, all_pods: list[Obj]) -> None:
        meta = svc["metadata"]
        if not (svc.get("spec") or {}).get("selector"):
            return  # Endpoints of a Service without selector are the user's to manage
        ns = meta["namespace"]
        subsets = endpoint_subsets(svc, all_pods)
        existing = api.find(EP, ns, meta["name"])
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": meta["name"], "namespace": ns, "labels": meta.get("labels") or {}},
        }
        if subsets:
            body["subsets"] = subsets
        if existing is None:
            api.create(EP, ns, body)
        elif existing.get("subsets") != body.get("subsets"):
            existing["subsets"] = subsets
            if not subsets:
                existing.pop("subsets")
            api.update(EP, existing)


class EndpointsFastPath:
    """A pod's readiness on its way to the proxies: between the controllers' full passes
    (debounced 20 ms, every controller), the Endpoints of the Services selecting a pod that
    changed are written within a few milliseconds, under the same lock as the passes (so the
    two never write from different views). The full pass still writes every Endpoints."""

    DEBOUNCE = 0.002

    def __init__(self, store: Any, api: Api, lock: Any, clock: Any, stop: Any) -> None:
        import threading

        self.store, self.api, self.lock, self.clock, self.stop = store, api, lock, clock, stop
        self.wake = threading.Event()
        self.guard = threading.Lock()  # `changed` is added to by writers' threads
        self.changed: set[tuple[str, tuple[tuple[str, str], ...]]] = set()  # (namespace, labels)
        self.services_changed = False

    def start(self) -> None:
        import threading

        self.store.watch(self._on_change)
        threading.Thread(target=self._loop, name="endpoints", daemon=True).start()

    def _on_change(self, change: Any) -> bool:
        kind = change.resource.kind
        if kind == "Pod":
            ns, _, labels = change.meta
            with self.guard:
                self.changed.add((ns, tuple(sorted(labels.items()))))
            self.wake.set()
        elif kind == "Service":
            self.services_changed = True
            self.wake.set()
        return False  # nothing queued: the wake-up is all this needs

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.wake.wait(10.0)
            self.wake.clear()
            if self.stop.wait(self.DEBOUNCE):
                return
            with self.guard:
                changed, self.changed = self.changed, set()
                everything, self.services_changed = self.services_changed, False
            try:
                with self.lock:
                    self.sync(changed, everything)
            except Exception:  # noqa: BLE001 - the full pass catches up
                import logging

                logging.getLogger("mikro.controllers").exception("endpoints fast path failed")

    def sync(self, changed: set[tuple[str, tuple[tuple[str, str], ...]]], everything: bool) -> None:
        services = self.api.list(SVC)

        def affected(svc: Obj) -> bool:
            selector = (svc.get("spec") or {}).get("selector") or {}
            ns = svc["metadata"]["namespace"]
            return bool(selector) and any(
                pns == ns and selector_matches({"matchLabels": selector}, dict(labels)) for pns, labels in changed
            )

        todo = services if everything else [s for s in services if affected(s)]
        if not todo:
            return
        pods = self.api.list(POD)
        for svc in todo:
            guarded(EndpointsController().sync_one, self.api, svc, pods)
