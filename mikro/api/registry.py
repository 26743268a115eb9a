"""The API server's verbs over the store: defaulting, validation, allocation, deletion rules.

Both the HTTP layer and the in-process controllers go through here, so that an object
created by a controller gets exactly what one created by kubectl gets.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import random
from datetime import UTC, datetime
from typing import Any

from mikro.api import defaults, patch, validation, validation_apps
from mikro.api.resources import BY_KIND, Resource
from mikro.api.store import Store, now_rfc3339
from mikro.errors import ApiError, already_exists, invalid

NODE_PORT_RANGE = (30000, 32767)
PROTECTED_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}


def random_suffix(n: int = 5) -> str:
    # Kubernetes avoids vowels and look-alike digits in generated names.
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


class Registry:
    def __init__(self, store: Store, service_network: str, node_name: str) -> None:
        self.store = store
        self.service_network = ipaddress.ip_network(service_network)
        self.node_name = node_name

    # -- reads -----------------------------------------------------------------------------

    def get(self, res: Resource, ns: str, name: str) -> dict[str, Any]:
        return self.store.get(res, ns, name)

    def list(self, res: Resource, ns: str | None = None) -> tuple[list[dict[str, Any]], int]:
        return self.store.list(res, ns)

    # -- admission -------------------------------------------------------------------------

    def _check(self, res: Resource, obj: dict[str, Any]) -> None:
        errors = validation.validate(obj)
        if errors:
            raise invalid(res.kind, (obj.get("metadata") or {}).get("name", ""), res.group, errors)

    def _admit(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if res.kind == "Service":
            self._allocate_service(obj, old)
        if res.kind == "Pod" and old is None:
            obj.setdefault("status", {"phase": "Pending", "qosClass": "BestEffort"})
        if res.kind in ("StatefulSet", "DaemonSet") and old is not None:
            errors = validation_apps.update_errors(res.kind, old, obj)
            if errors:
                raise invalid(res.kind, obj["metadata"]["name"], res.group, errors)
        if res.kind == "Deployment" and old is not None:
            old_sel = (old.get("spec") or {}).get("selector")
            if old_sel != (obj.get("spec") or {}).get("selector"):
                raise invalid(
                    res.kind,
                    obj["metadata"]["name"],
                    res.group,
                    [validation.FieldError("spec.selector", "Invalid", "Invalid value: field is immutable")],
                )

    def _allocate_service(self, svc: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = svc.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        name = svc["metadata"]["name"]
        if old_spec.get("clusterIP") and spec.get("clusterIP") in (None, ""):
            spec["clusterIP"] = old_spec["clusterIP"]
        if spec.get("type") == "ExternalName":
            spec.pop("clusterIP", None)
        elif spec.get("clusterIP") in (None, ""):
            spec["clusterIP"] = self._free_cluster_ip()
        elif spec["clusterIP"] != "None" and spec["clusterIP"] != old_spec.get("clusterIP"):
            ip = spec["clusterIP"]
            if ipaddress.ip_address(ip) not in self.service_network:
                raise invalid(
                    "Service",
                    name,
                    "",
                    [
                        validation.FieldError(
                            "spec.clusterIP",
                            "Invalid",
                            f'Invalid value: "{ip}": provided IP is not in the valid range. The range of valid IPs is {self.service_network}',
                        )
                    ],
                )
            if ip in self._used_cluster_ips():
                raise invalid(
                    "Service",
                    name,
                    "",
                    [
                        validation.FieldError(
                            "spec.clusterIP", "Invalid", f'Invalid value: "{ip}": provided IP is already allocated'
                        )
                    ],
                )
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            spec["clusterIPs"] = [spec["clusterIP"]]
        wants_node_port = spec.get("type") in ("NodePort", "LoadBalancer")
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or []}
        used = self._used_node_ports(exclude=svc["metadata"])
        for i, port in enumerate(spec.get("ports") or []):
            if not wants_node_port:
                port.pop("nodePort", None)
                continue
            if port.get("nodePort") is None:
                previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                port["nodePort"] = previous or self._free_node_port(used)
            elif port["nodePort"] in used:
                raise invalid(
                    "Service",
                    name,
                    "",
                    [
                        validation.FieldError(
                            f"spec.ports[{i}].nodePort",
                            "Invalid",
                            f"Invalid value: {port['nodePort']}: provided port is already allocated",
                        )
                    ],
                )
            used.add(port["nodePort"])

    def _used_cluster_ips(self) -> set[str]:
        items, _ = self.store.list(BY_KIND["Service"])
        return {(s.get("spec") or {}).get("clusterIP") for s in items} - {None, "", "None"}

    def _free_cluster_ip(self) -> str:
        used = self._used_cluster_ips()
        hosts = list(self.service_network.hosts())
        # Start in x.x.183.x like microk8s when the range holds it; any free address otherwise.
        preferred = [h for h in hosts if h.packed[2] == 183 and h.packed[3] > 1] or hosts
        for candidates in (random.sample(preferred, min(len(preferred), 64)), preferred, hosts):
            for ip in candidates:
                if str(ip) not in used:
                    return str(ip)
        raise ApiError(500, f"no free cluster IP in {self.service_network}")

    def _used_node_ports(self, exclude: dict[str, Any]) -> set[int]:
        items, _ = self.store.list(BY_KIND["Service"])
        used = set()
        for s in items:
            m = s["metadata"]
            if m.get("namespace") == exclude.get("namespace") and m["name"] == exclude.get("name"):
                continue
            used |= {p["nodePort"] for p in (s.get("spec") or {}).get("ports") or [] if p.get("nodePort")}
        return used

    def _free_node_port(self, used: set[int]) -> int:
        low, high = NODE_PORT_RANGE
        for _ in range(200):
            port = random.randint(low, high)
            if port not in used:
                return port
        for port in range(low, high + 1):
            if port not in used:
                return port
        raise ApiError(500, "no free node port")

    def _check_namespace(self, res: Resource, ns: str) -> None:
        if not res.namespaced:
            return
        namespace = self.store.find(BY_KIND["Namespace"], "", ns)
        if namespace is None:
            raise ApiError(404, f'namespaces "{ns}" not found', details={"name": ns, "kind": "namespaces"})
        if namespace["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f'{res.plural} "{ns}" is forbidden: unable to create new content in '
                f"namespace {ns} because it is being terminated",
                "Forbidden",
            )

    # -- verbs -----------------------------------------------------------------------------

    def create(self, res: Resource, ns: str, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        if obj.get("kind") not in (None, res.kind):
            raise ApiError(400, f"the kind {obj.get('kind')!r} does not match the URL's {res.kind!r}")
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise ApiError(
                    400, "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        for field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
            meta.pop(field, None)
        defaults.apply(obj)
        if not res.namespaced:
            meta.pop("namespace", None)
        self._check(res, obj)
        self._check_namespace(res, ns)
        self._admit(res, obj, None)
        if dry_run:
            if self.store.find(res, ns, meta["name"]) is not None:
                raise already_exists(res.plural, meta["name"], res.group)
            return obj
        return self.store.create(res, obj)

    def update(
        self,
        res: Resource,
        ns: str,
        name: str,
        obj: dict[str, Any],
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise ApiError(400, "the name of the object does not match the name on the URL")
        meta["name"] = name
        if res.namespaced:
            meta["namespace"] = ns
        old = self.store.get(res, ns, name)
        if subresource == "status":
            if dry_run:
                return obj
            return self.store.update(res, obj, status_only=True)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        defaults.apply(obj)
        if not res.namespaced:
            meta.pop("namespace", None)
        self._check(res, obj)
        self._admit(res, obj, old)
        if dry_run:
            return obj
        return self.store.update(res, obj)

    def patch(
        self,
        res: Resource,
        ns: str,
        name: str,
        content_type: str,
        body: Any,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        current = self.store.get(res, ns, name)
        target = current
        if subresource == "scale":
            target = scale_of(current)
        try:
            if "json-patch" in content_type:
                patched = patch.json_patch(target, body)
            elif "strategic-merge-patch" in content_type:
                patched = patch.strategic_merge_patch(target, body)
            elif "merge-patch" in content_type:
                patched = patch.merge_patch(target, body)
            else:
                raise ApiError(415, f"the content type {content_type!r} is not supported for PATCH")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ApiError(422, f"the patch could not be applied: {exc}") from None
        if subresource == "scale":
            return self.set_scale(res, ns, name, patched, dry_run)
        if not isinstance(patched, dict):
            raise ApiError(422, "the patch did not produce an object")
        # A patch applies to what was read, so only a resourceVersion the patch itself
        # carries makes it conditional.
        sent_rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        patched.setdefault("metadata", {})["resourceVersion"] = sent_rv
        return self.update(res, ns, name, patched, subresource=subresource, dry_run=dry_run)

    def set_scale(
        self, res: Resource, ns: str, name: str, scale: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        replicas = (scale.get("spec") or {}).get("replicas")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise invalid(
                "Scale",
                name,
                "autoscaling",
                [
                    validation.FieldError(
                        "spec.replicas", "Invalid", f"Invalid value: {replicas}: must be greater than or equal to 0"
                    )
                ],
            )
        current = self.store.get(res, ns, name)
        current["spec"]["replicas"] = replicas
        current["metadata"].pop("resourceVersion", None)
        updated = self.update(res, ns, name, current, dry_run=dry_run)
        return scale_of(updated)

    def delete(
        self,
        res: Resource,
        ns: str,
        name: str,
        propagation: str | None = None,
        grace_seconds: int | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        current = self.store.get(res, ns, name)
        if res.kind == "Namespace" and name in PROTECTED_NAMESPACES:
            raise ApiError(403, f'namespaces "{name}" is forbidden: this namespace may not be deleted', "Forbidden")
        if dry_run:
            return current
        if propagation == "Orphan":
            self.orphan_dependents(current["metadata"]["uid"])
        if res.kind == "Pod":
            spec_grace = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            grace = spec_grace if grace_seconds is None else grace_seconds
            if current["metadata"].get("deletionTimestamp") and grace_seconds == 0:
                return self.store.delete(res, ns, name)
            # The pod runtime stops the containers, then removes the object.
            return self.store.delete(res, ns, name, graceful=True, grace_seconds=grace)
        if res.kind == "Namespace":
            # The namespace controller empties it, then removes it.
            return self.store.delete(res, ns, name, graceful=True)
        return self.store.delete(res, ns, name)

    def orphan_dependents(self, owner_uid: str) -> None:
        for kind in ("ReplicaSet", "Pod", "Endpoints", "ControllerRevision", "PersistentVolumeClaim"):
            r = BY_KIND[kind]
            items, _ = self.store.list(r)
            for item in items:
                refs = item["metadata"].get("ownerReferences") or []
                kept = [ref for ref in refs if ref.get("uid") != owner_uid]
                if len(kept) != len(refs):
                    item["metadata"]["ownerReferences"] = kept
                    self.store.update(r, item)

    # -- events ----------------------------------------------------------------------------

    def record_event(
        self, obj: dict[str, Any], reason: str, message: str, type_: str = "Normal", component: str = "mikro"
    ) -> None:
        """Record an Event about `obj`, counting repeats of the same reason and message."""
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        events = BY_KIND["Event"]
        digest = hashlib.sha1(f"{meta.get('uid')}|{reason}|{message}".encode()).hexdigest()[:12]
        key = f"{meta.get('name')}.{digest}"
        stamp = now_rfc3339()
        micro = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        existing = self.store.find(events, ns, key)
        if existing is not None:
            existing["count"] = existing.get("count", 1) + 1
            existing["lastTimestamp"] = stamp
            existing["eventTime"] = micro
            self.store.update(events, existing)
            return
        if self.store.find(BY_KIND["Namespace"], "", ns) is None:
            return
        self.store.create(
            events,
            {
                "metadata": {"name": key, "namespace": ns},
                "involvedObject": {
                    "kind": obj.get("kind"),
                    "namespace": ns,
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                    "apiVersion": obj.get("apiVersion"),
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "eventTime": micro,
                "source": {"component": component, "host": self.node_name},
                "reportingComponent": component,
                "reportingInstance": self.node_name,
            },
        )


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in selector.items()),
        },
    }
