"""The API server's verbs over the store: defaulting, validation, allocation, deletion rules.

Both the HTTP layer and the in-process controllers go through here, so that an object
created by a controller gets exactly what one created by kubectl gets.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import random
import threading
import weakref
from datetime import UTC, datetime
from typing import Any

from mikro.api import (
    batch,
    bodies,
    celrules,
    crds,
    defaults,
    fieldvalidation,
    managedfields,
    openapi,
    patch,
    policy,
    storage,
    uids,
    validation,
    validation_apps,
    webhooks,
)
from mikro.api.eventrecorder import EventRecorder
from mikro.api.resources import BY_KIND, Resource
from mikro.api.store import Store, now_rfc3339
from mikro.errors import ApiError, already_exists, invalid

NODE_PORT_RANGE = (30000, 32767)
# A read-modify-write (patch, scale) that lost a race to another writer starts again from the
# object as it is now, as kube-apiserver's GuaranteedUpdate does; this many times at most.
MAX_UPDATE_ATTEMPTS = 1000
# A generated name that is taken already is generated again, as kube-apiserver does (1.32,
# RetryGenerateName): 8 attempts in all.
GENERATE_NAME_ATTEMPTS = 8
PROTECTED_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}


class _KeyLock:
    """A reentrant lock that a weak dictionary can hold (one per object being patched)."""

    __slots__ = ("lock", "__weakref__")

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def random_suffix(n: int = 5) -> str:
    # Kubernetes avoids vowels and look-alike digits in generated names.
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def host_numbers(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> range:
    """The addresses `network.hosts()` gives, as integers: without the network's own address
    (and IPv4's broadcast) unless it holds two addresses or one. (Listing `hosts()` of the
    default /17 made 32 766 address objects: 20-80 ms of every Service's create.)"""
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.num_addresses > 2:
        first += 1
        last -= 1 if network.version == 4 else 0
    return range(first, last + 1)


def microk8s_numbers(network: ipaddress.IPv4Network | ipaddress.IPv6Network, hosts: range) -> list[int]:
    """The hosts of an IPv4 network of the form x.x.183.y with y > 1 (where microk8s gives its
    Services their addresses), as integers."""
    if network.version != 4:
        return []
    out: list[int] = []
    for top in range(hosts.start >> 16, ((hosts.stop - 1) >> 16) + 1):
        block = (top << 16) | (183 << 8)
        out.extend(range(max(hosts.start, block | 2), min(hosts.stop, block + 256)))
    return out


class Registry:
    def __init__(self, store: Store, service_network: str, node_name: str) -> None:
        self.store = store
        self.service_network = ipaddress.ip_network(service_network)
        self.node_name = node_name
        # Cluster IPs and node ports are chosen from what is stored: one Service write at a time.
        self.allocation = threading.RLock()
        crds.rebuild(self.store.list(BY_KIND[crds.CRD_KIND])[0])
        # The admission webhooks, by configuration kind: read once, dropped on their writes.
        self._webhook_cache: dict[str, list[dict[str, Any]]] = {}
        self._writers: weakref.WeakValueDictionary[tuple[str, str, str, str], _KeyLock] = weakref.WeakValueDictionary()
        self._writers_guard = threading.Lock()
        # Events of the kubelet and the controllers: written in the background (eventrecorder.py)
        self.events = EventRecorder(self.record_event)

    # -- reads -----------------------------------------------------------------------------

    def get(self, res: Resource, ns: str, name: str) -> dict[str, Any]:
        return crds.as_version(self.store.get(res, ns, name), res)

    def list(self, res: Resource, ns: str | None = None) -> tuple[list[dict[str, Any]], int]:
        items, rv = self.store.list(res, ns)
        return [crds.as_version(o, res) for o in items], rv

    # -- admission -------------------------------------------------------------------------

    def _check(self, res: Resource, obj: dict[str, Any]) -> None:
        errors = validation.validate(obj)
        if res.custom is not None:
            errors += crds.validate(obj, res)
        elif res.kind == crds.CRD_KIND:
            found, warnings = crds.validate_crd(obj, self.store.list(res)[0])
            errors += found
            for text in warnings:
                fieldvalidation.warn(text)
        if errors:
            raise invalid(res.kind, (obj.get("metadata") or {}).get("name", ""), res.group, errors)

    def _check_rules(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """A custom object's CEL rules (x-kubernetes-validations), new and transition ones."""
        if res.custom is None or not celrules.has_rules(res.custom.schema):
            return
        found, skipped = celrules.errors(res.custom.schema, obj, old)
        for text in skipped:
            fieldvalidation.warn(f"x-kubernetes-validations rule not enforced: {text}")
        if found:
            raise invalid(res.kind, (obj.get("metadata") or {}).get("name", ""), res.group, found)

    def _admit(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._check_rules(res, obj, old)
        ns = (obj.get("metadata") or {}).get("namespace") or ""
        policy.admit(res, obj, old, lambda r: self.store.in_namespace(r, ns) if r.namespaced else [])
        if res.kind == "Service":
            self._allocate_service(obj, old)
        if res.kind == crds.CRD_KIND:
            crds.established(obj)
        if res.kind == "Pod" and old is None and not (obj.get("status") or {}).get("phase"):
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}  # Go clients send `status: {}`
        if res.kind == "PersistentVolumeClaim" and old is None:
            storage.admit_claim(obj, self.store.list(BY_KIND["StorageClass"])[0])
        if res.kind == "PersistentVolume" and old is None:
            storage.admit_volume(obj)
        if res.kind == "Job" and old is not None:
            errors = [validation.FieldError(*e) for e in batch.validate_job_update(obj, old)]
            if errors:
                raise invalid(res.kind, obj["metadata"]["name"], res.group, errors)
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
        hosts = host_numbers(self.service_network)
        # Start in x.x.183.x like microk8s when the range holds it; any free address otherwise.
        preferred = microk8s_numbers(self.service_network, hosts) or hosts
        address = type(self.service_network.network_address)
        for candidates in (random.sample(preferred, min(len(preferred), 64)), preferred, hosts):
            for number in candidates:
                ip = str(address(number))
                if ip not in used:
                    return ip
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

    def create(
        self,
        res: Resource,
        ns: str,
        obj: dict[str, Any],
        dry_run: bool = False,
        field_validation: str | None = None,
        assume_namespace: bool = False,
        manager: str | None = None,
    ) -> dict[str, Any]:
        """`assume_namespace` (dry run only): a namespace that does not exist yet is taken as
        created, so that `mikro apply` can try every object of a new namespace before it
        changes anything."""
        obj = bodies.json_copy(obj)  # (the caller's object stays as it was)
        if obj.get("kind") not in (None, res.kind):
            raise ApiError(400, f"the kind {obj.get('kind')!r} does not match the URL's {res.kind!r}")
        if res.custom is not None:
            crd = self.store.find(BY_KIND[crds.CRD_KIND], "", res.custom.crd_name)
            if crd is not None and crd["metadata"].get("deletionTimestamp"):
                raise ApiError(405, "create not allowed while custom resource definition is terminating")
        if field_validation:
            obj = fieldvalidation.decode(obj, res.kind, res.api_version, field_validation)
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
        generated = not meta.get("name") and bool(meta.get("generateName"))
        if generated:
            meta["name"] = meta["generateName"] + random_suffix()
        for field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
            meta.pop(field, None)
        meta["uid"] = uids.uuid4()  # before defaulting, as Kubernetes: a Job's selector holds it
        defaults.apply(obj)
        if not res.namespaced:
            meta.pop("namespace", None)
        if res.custom is not None:
            obj = crds.admit(obj, res)
            meta = obj["metadata"]
            if res.custom.status:
                obj.pop("status", None)  # status is written through /status
        obj = self._webhooks(res, "CREATE", ns, obj, None, dry_run, mutating=True)
        meta = obj["metadata"]
        self._check(res, obj)
        if not (dry_run and assume_namespace and self.store.find(BY_KIND["Namespace"], "", ns) is None):
            self._check_namespace(res, ns)
        self._webhooks(res, "CREATE", ns, obj, None, dry_run, mutating=False)
        with self.allocation if res.kind == "Service" else _NO_LOCK:
            self._admit(res, obj, None)
            if "status" in ((openapi.schema_of(res.kind) or {}).get("properties") or {}):
                obj.setdefault("status", {})  # clients (kr8s, the official client) expect the key
            if manager:
                managedfields.track_update(None, obj, manager, res.kind)
            if dry_run:
                if self.store.find(res, ns, meta["name"]) is not None:
                    raise already_exists(res.plural, meta["name"], res.group)
                return obj
            for attempt in range(1, GENERATE_NAME_ATTEMPTS + 1):
                try:
                    created = self.store.create(res, obj)
                    break
                except ApiError as err:
                    if not generated or err.code != 409 or attempt == GENERATE_NAME_ATTEMPTS:
                        raise
                    meta["name"] = meta["generateName"] + random_suffix()
            self._written(res, created)
            return created

    def update(
        self,
        res: Resource,
        ns: str,
        name: str,
        obj: dict[str, Any],
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str | None = None,
        manager: str | None = None,
    ) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        if field_validation and subresource is None:
            obj = fieldvalidation.decode(obj, res.kind, res.api_version, field_validation)
        meta = obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise ApiError(400, "the name of the object does not match the name on the URL")
        meta["name"] = name
        if res.namespaced:
            meta["namespace"] = ns
        old = self.store.get(res, ns, name)
        if subresource == "status":
            if res.custom is not None:
                # the status is checked against the schema as the whole object is
                whole = crds.admit({**old, "status": obj.get("status", {})}, res)
                obj["status"] = whole.get("status", {})
                self._check(res, whole)
                self._check_rules(res, whole, old)
            if dry_run:
                return obj
            return self.store.update(res, obj, status_only=True)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        meta["uid"] = old["metadata"]["uid"]
        defaults.apply(obj)
        if not res.namespaced:
            meta.pop("namespace", None)
        if res.custom is not None:
            obj = crds.admit(obj, res)
            meta = obj["metadata"]
        obj = self._webhooks(res, "UPDATE", ns, obj, old, dry_run, mutating=True)
        meta = obj["metadata"]
        self._check(res, obj)
        self._webhooks(res, "UPDATE", ns, obj, old, dry_run, mutating=False)
        with self.allocation if res.kind == "Service" else _NO_LOCK:
            self._admit(res, obj, old)
            if manager:
                managedfields.track_update(old, obj, manager, res.kind)
            elif "managedFields" not in meta and "managedFields" in old["metadata"]:
                meta["managedFields"] = old["metadata"]["managedFields"]
            if dry_run:
                return obj
            updated = self.store.update(res, obj)
            self._written(res, updated)
            return updated

    def patch(
        self,
        res: Resource,
        ns: str,
        name: str,
        content_type: str,
        body: Any,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str | None = None,
        manager: str | None = None,
    ) -> dict[str, Any]:
        if res.custom is not None and "strategic-merge-patch" in content_type:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                "UnsupportedMediaType",
            )
        check_patch(content_type, body)
        # A resourceVersion the patch itself carries makes it conditional (409 when stale);
        # otherwise it applies to the object as it is when written: on a conflict with another
        # writer, read again and patch again.
        sent_rv = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        with self._one_writer(res, ns, name):
            for _ in range(MAX_UPDATE_ATTEMPTS):
                current = self.store.get(res, ns, name)
                target = current
                if subresource == "scale":
                    target = crds.scale_of(current, res) if res.custom else scale_of(current)
                try:
                    if "json-patch" in content_type:
                        patched = patch.json_patch(target, body)
                    elif "strategic-merge-patch" in content_type:
                        patched = patch.strategic_merge_patch(target, body)
                    else:
                        patched = patch.merge_patch(target, body)
                except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                    raise ApiError(422, f"the patch could not be applied: {exc}") from None
                if not isinstance(patched, dict):
                    raise ApiError(422, "the patch did not produce an object")
                if not isinstance(patched.get("metadata", {}), dict):
                    raise ApiError(422, "the patch did not produce an object with metadata")
                if field_validation and subresource is None:
                    patched = fieldvalidation.decode_patched(patched, res.kind, field_validation, body)
                meta = patched.setdefault("metadata", {})
                meta["resourceVersion"] = sent_rv or current["metadata"]["resourceVersion"]
                try:
                    if subresource == "scale":
                        return self.set_scale(res, ns, name, patched, dry_run, _current=current)
                    return self.update(
                        res, ns, name, patched, subresource=subresource, dry_run=dry_run, manager=manager
                    )
                except ApiError as err:
                    if err.code != 409 or err.reason == "AlreadyExists" or sent_rv:
                        raise
            raise ApiError(409, f"the patch of {res.plural} {name!r} kept conflicting with other writers; try again")

    def _one_writer(self, res: Resource, ns: str, name: str) -> _KeyLock:
        """The lock of one object's read-modify-writes in this process: concurrent patches of
        the same object take turns instead of each losing the race to the others' durable
        writes and retrying (100 parallel patches were 100² attempts under group commit)."""
        key = (res.group, res.plural, ns, name)
        with self._writers_guard:
            lock = self._writers.get(key)
            if lock is None:
                lock = self._writers[key] = _KeyLock()
            return lock

    def set_scale(
        self,
        res: Resource,
        ns: str,
        name: str,
        scale: dict[str, Any],
        dry_run: bool = False,
        _current: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write a Scale. With a resourceVersion in the Scale, only onto that version (409
        otherwise); without, onto the object as it is when written (retrying on a conflict)."""
        spec = scale.get("spec")
        # Go's int32: an absent replicas is 0, as a protobuf scale to zero arrives.
        replicas = spec.get("replicas", 0) if isinstance(spec, dict) else None
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
        sent_rv = (scale.get("metadata") or {}).get("resourceVersion")
        for _ in range(MAX_UPDATE_ATTEMPTS):
            current = _current or self.store.get(res, ns, name)
            _current = None
            if res.custom is not None:
                crds.set_replicas(current, res, replicas)
            else:
                current.setdefault("spec", {})["replicas"] = replicas
            current["metadata"]["resourceVersion"] = sent_rv or current["metadata"]["resourceVersion"]
            try:
                updated = self.update(res, ns, name, current, dry_run=dry_run)
                return crds.scale_of(updated, res) if res.custom else scale_of(updated)
            except ApiError as err:
                if err.code != 409 or err.reason == "AlreadyExists" or sent_rv:
                    raise
        raise ApiError(409, f"the scale of {res.plural} {name!r} kept conflicting with other writers; try again")

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
        if not current["metadata"].get("deletionTimestamp"):
            self._webhooks(res, "DELETE", ns, None, current, dry_run, mutating=False)
        if res.kind in webhooks.KINDS:
            self._webhook_cache.clear()
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
        if res.kind == crds.CRD_KIND:
            # Kubernetes' two steps: marked Terminating and held by the cleanup finalizer here;
            # the CRD finalizer controller deletes its objects (their own finalizers honoured),
            # then lets it go.
            if current["metadata"].get("deletionTimestamp"):
                return current
            finalizers = current["metadata"].get("finalizers") or []
            if crds.CLEANUP_FINALIZER not in finalizers:
                current["metadata"]["finalizers"] = [*finalizers, crds.CLEANUP_FINALIZER]
                current = self.store.update(res, current)
            crds.set_condition(
                current,
                "Terminating",
                "True",
                "InstanceDeletionPending",
                "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
            )
            self.store.update(res, current, status_only=True)
            return self.store.delete(res, ns, name, graceful=True)
        return self.store.delete(res, ns, name)

    def _webhooks(
        self,
        res: Resource,
        operation: str,
        ns: str,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
        dry_run: bool,
        mutating: bool,
    ) -> Any:
        """The admission webhooks of one kind over a write; the (possibly patched) object.
        Webhook configurations themselves are never sent to webhooks, as on Kubernetes."""
        kind = webhooks.MUTATING if mutating else webhooks.VALIDATING
        if res.kind in webhooks.KINDS:
            return obj
        hooks = self._webhook_cache.get(kind)
        if hooks is None:
            hooks = self._webhook_cache[kind] = webhooks.hooks_of(self.store.list(BY_KIND[kind])[0])
        if not hooks:
            return obj
        name = ((obj or old or {}).get("metadata") or {}).get("name", "")
        labels = None
        if res.namespaced:
            namespace = self.store.find(BY_KIND["Namespace"], "", ns)
            labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
        return webhooks.admit(
            webhooks.Call(res, operation, ns, name, obj, old, dry_run),
            hooks,
            mutating,
            lambda n, s: self.store.find(BY_KIND["Service"], n, s),
            labels,
            fieldvalidation.warn,
        )

    def _written(self, res: Resource, obj: dict[str, Any]) -> None:
        """After a write: what it changes in what the registry serves (CRDs, webhooks)."""
        if res.kind in webhooks.KINDS:
            self._webhook_cache.clear()
        self._serve_crd(res, obj)

    @staticmethod
    def _serve_crd(res: Resource, crd: dict[str, Any]) -> None:
        """A CRD written: its resources served as it now says, or no more once it is gone."""
        if res.kind != crds.CRD_KIND:
            return
        if crds.gone(crd):
            crds.unregister(crd["metadata"]["name"])
        else:
            crds.register(crd)

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


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def check_patch(content_type: str, body: Any) -> None:
    """A PATCH body of the shape its content type names (400 otherwise, as Go's decoding of
    it answers): a JSON patch is a list of operations, a merge patch an object."""
    if "json-patch" in content_type:
        if not isinstance(body, list):
            raise ApiError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        for i, op in enumerate(body):
            if not isinstance(op, dict):
                raise ApiError(400, f"json: cannot unmarshal a non-object into operation {i} of a jsonpatch.Patch")
            if not isinstance(op.get("op"), str) or not isinstance(op.get("path", ""), str):
                raise ApiError(400, f"operation {i} of the JSON patch needs string 'op' and 'path' fields")
    elif "merge-patch" in content_type:  # merge-patch+json, strategic-merge-patch+json
        if not isinstance(body, dict):
            raise ApiError(400, "json: cannot unmarshal a non-object into Go value of type map[string]interface {}")
    else:
        raise ApiError(415, f"the content type {content_type!r} is not supported for PATCH")


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    selector = (obj.get("spec") or {}).get("selector") or {}
    if obj.get("kind") != "ReplicationController":  # its selector is a plain label map
        selector = selector.get("matchLabels") or {}
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
