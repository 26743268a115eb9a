"""The kube-controller-manager part: level-triggered reconcile loops.

Deployment -> ReplicaSets -> Pods, Service -> Endpoints, namespace deletion and garbage
collection by ownerReferences. Each pass reads everything and converges; a pass is run on
every change (debounced) and every second, so a missed change is never lost.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
from typing import Any

from mikro.api.defaults import parse_int_or_percent
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import now_rfc3339
from mikro.api.validation import selector_matches
from mikro.controllers.batch_hook import extra_controllers
from mikro.errors import ApiError

log = logging.getLogger("mikro.controllers")

POD, RS, DEPLOY = BY_KIND["Pod"], BY_KIND["ReplicaSet"], BY_KIND["Deployment"]
SVC, EP, NS = BY_KIND["Service"], BY_KIND["Endpoints"], BY_KIND["Namespace"]
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Every change wakes the controllers; this full pass only catches what no change announced.
RESYNC_SECONDS = 10.0


def template_hash(template: dict[str, Any]) -> str:
    """A stable, name-safe hash of a pod template (the `pod-template-hash` label)."""
    digest = int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest(), 16)
    out = ""
    for _ in range(10):
        digest, rem = divmod(digest, len(SAFE_ALPHABET))
        out += SAFE_ALPHABET[rem]
    return out


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_ready(pod: dict[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def active(pod: dict[str, Any]) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


def template_without_hash(template: dict[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return t


class Controllers:
    def __init__(self, registry: Registry) -> None:
        self.reg = registry
        self.store = registry.store
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        # Controllers with modules of their own (Job, CronJob, volumes): each pass ends with
        # them; each says when it next needs a pass (a back-off, a deadline, a schedule).
        self.extra = extra_controllers(registry)
        self.due: float | None = None

    def start(self) -> None:
        self.store.watch(lambda change: change.resource.kind != "Event" and not self.wake.set())
        self.thread = threading.Thread(target=self._loop, name="controllers", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.wake.wait(RESYNC_SECONDS if self.due is None else min(RESYNC_SECONDS, max(self.due, 0.02)))
            self.wake.clear()
            self.stop.wait(0.02)  # debounce a burst of writes into one pass
            try:
                self.sync_all()
            except Exception:  # noqa: BLE001 - a controller bug must not stop the others
                log.exception("controller pass failed")

    def sync_all(self) -> None:
        with self.lock:
            self.sync_namespaces()
            self.collect_garbage()
            for deploy in self.store.list(DEPLOY)[0]:
                self._guard(self.sync_deployment, deploy)
            pods, _ = self.store.list(POD)
            for rs in self.store.list(RS)[0]:
                self._guard(self.sync_replicaset, rs, pods)
            pods, _ = self.store.list(POD)
            for deploy in self.store.list(DEPLOY)[0]:
                self._guard(self.deployment_status, deploy)
            for svc in self.store.list(SVC)[0]:
                self._guard(self.sync_endpoints, svc, pods)
            self.due = None
            for controller in self.extra:
                try:
                    wait = controller.sync_all(self.store)
                except ApiError as err:
                    wait = 1.0  # raced with a writer: look again soon
                    if err.code not in (404, 409):
                        log.warning("%s: %s", type(controller).__name__, err.message)
                if wait is not None:
                    self.due = wait if self.due is None else min(self.due, wait)

    def _guard(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except ApiError as err:
            if err.code not in (404, 409):  # gone or raced: the next pass sees the new state
                log.warning("%s: %s", fn.__name__, err.message)

    # -- ReplicaSet ------------------------------------------------------------------------

    def sync_replicaset(self, rs: dict[str, Any], all_pods: list[dict[str, Any]]) -> None:
        meta = rs["metadata"]
        if meta.get("deletionTimestamp"):
            return
        ns, uid = meta["namespace"], meta["uid"]
        pods = [p for p in all_pods if p["metadata"]["namespace"] == ns and owned_by(p, uid)]
        live = [p for p in pods if active(p)]
        want = int(rs["spec"].get("replicas", 1))
        diff = want - len(live)
        if diff > 0:
            template = rs["spec"].get("template") or {}
            for _ in range(min(diff, 100)):
                tmeta = copy.deepcopy(template.get("metadata") or {})
                pod = {
                    "metadata": {
                        "generateName": meta["name"] + "-",
                        "namespace": ns,
                        "labels": tmeta.get("labels") or {},
                        "annotations": tmeta.get("annotations") or {},
                        "ownerReferences": [owner_ref(rs)],
                    },
                    "spec": copy.deepcopy(template.get("spec") or {}),
                }
                created = self.reg.create(POD, ns, pod)
                live.append(created)
                self.reg.record_event(
                    rs,
                    "SuccessfulCreate",
                    f"Created pod: {created['metadata']['name']}",
                    component="replicaset-controller",
                )
        elif diff < 0:
            # Remove the least useful first: not scheduled, not ready, then the youngest.
            def rank(p: dict[str, Any]) -> tuple[int, int, str]:
                return (
                    1 if (p.get("spec") or {}).get("nodeName") else 0,
                    1 if pod_ready(p) else 0,
                    "~" + "".join(chr(255 - ord(c)) for c in p["metadata"].get("creationTimestamp", "")),
                )

            for pod in sorted(live, key=rank)[:-diff]:
                self.reg.delete(POD, ns, pod["metadata"]["name"])
                live.remove(pod)
                self.reg.record_event(
                    rs, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", component="replicaset-controller"
                )
        ready = [p for p in live if pod_ready(p)]
        status = {
            "replicas": len(live),
            "fullyLabeledReplicas": len(live),
            "readyReplicas": len(ready),
            "availableReplicas": len(ready),
            "observedGeneration": meta.get("generation", 1),
        }
        if status != rs.get("status"):
            rs["status"] = status
            self.store.update(RS, rs, status_only=True)

    # -- Deployment ------------------------------------------------------------------------

    def _owned_replicasets(self, deploy: dict[str, Any]) -> list[dict[str, Any]]:
        ns, uid = deploy["metadata"]["namespace"], deploy["metadata"]["uid"]
        rss = [rs for rs in self.store.list(RS, ns)[0] if owned_by(rs, uid)]
        return sorted(rss, key=rs_sorted_key)

    def sync_deployment(self, deploy: dict[str, Any]) -> None:
        meta, spec = deploy["metadata"], deploy["spec"]
        if meta.get("deletionTimestamp"):
            return
        ns = meta["namespace"]
        rss = self._owned_replicasets(deploy)
        template = spec.get("template") or {}
        new_rs = current_replicaset(template, rss)
        old = [rs for rs in rss if rs is not new_rs]
        replicas = int(spec.get("replicas", 1))
        max_revision = max([int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in rss] + [0])
        paused = bool(spec.get("paused"))
        if new_rs is None and not paused:
            h = template_hash(template)
            tpl = copy.deepcopy(template)
            tpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
            selector = copy.deepcopy(spec["selector"])
            selector.setdefault("matchLabels", {})[HASH_LABEL] = h
            strategy = spec.get("strategy") or {}
            start = replicas if not old else 0
            if strategy.get("type", "RollingUpdate") == "RollingUpdate" and old:
                start = min(replicas, max(0, self._surge_room(deploy, old, [])))
            annotations = {REVISION: str(max_revision + 1)}
            cause = (meta.get("annotations") or {}).get("kubernetes.io/change-cause")
            if cause:
                annotations["kubernetes.io/change-cause"] = cause
            body = {
                "metadata": {
                    "name": f"{meta['name']}-{h}",
                    "namespace": ns,
                    "labels": tpl["metadata"]["labels"],
                    "annotations": annotations,
                    "ownerReferences": [owner_ref(deploy)],
                },
                "spec": {
                    "replicas": start,
                    "selector": selector,
                    "template": tpl,
                    "minReadySeconds": spec.get("minReadySeconds", 0),
                },
            }
            try:
                new_rs = self.reg.create(RS, ns, body)
            except ApiError as err:
                if err.code != 409:
                    raise
                # A ReplicaSet of that name survived its Deployment (orphaned): adopt it.
                new_rs = self.store.get(RS, ns, body["metadata"]["name"])
                new_rs["metadata"]["ownerReferences"] = [owner_ref(deploy)]
                new_rs["metadata"].setdefault("annotations", {})[REVISION] = str(max_revision + 1)
                new_rs = self.store.update(RS, new_rs)
            self.reg.record_event(
                deploy,
                "ScalingReplicaSet",
                f"Scaled up replica set {new_rs['metadata']['name']} to {start}",
                component="deployment-controller",
            )
        elif (
            new_rs is not None
            and new_rs["metadata"].get("annotations", {}).get(REVISION) != str(max_revision)
            and old
            and not paused
        ):
            # Rolled back to an older template: it becomes the newest revision again.
            new_rs["metadata"].setdefault("annotations", {})[REVISION] = str(max_revision + 1)
            new_rs = self.store.update(RS, new_rs)
        if new_rs is None or paused:
            return
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            self._recreate(deploy, new_rs, old, replicas)
        else:
            self._rolling(deploy, new_rs, old, replicas)
        self._cleanup(deploy, old)

    def _scale(self, deploy: dict[str, Any], rs: dict[str, Any], count: int) -> None:
        current = int(rs["spec"].get("replicas", 0))
        if current == count:
            return
        rs["spec"]["replicas"] = count
        self.store.update(RS, rs)
        verb = "up" if count > current else "down"
        self.reg.record_event(
            deploy,
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {rs['metadata']['name']} to {count} from {current}",
            component="deployment-controller",
        )

    def _limits(self, deploy: dict[str, Any]) -> tuple[int, int]:
        replicas = int(deploy["spec"].get("replicas", 1))
        rolling = (deploy["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        surge = parse_int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
        unavailable = parse_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return surge, unavailable

    def _surge_room(self, deploy: dict[str, Any], old: list[dict[str, Any]], new: list[dict[str, Any]]) -> int:
        surge, _ = self._limits(deploy)
        replicas = int(deploy["spec"].get("replicas", 1))
        total = sum(int(rs["spec"].get("replicas", 0)) for rs in old + new)
        return replicas + surge - total

    def _rolling(
        self, deploy: dict[str, Any], new_rs: dict[str, Any], old: list[dict[str, Any]], replicas: int
    ) -> None:
        if not any(int(rs["spec"].get("replicas", 0)) for rs in old):
            self._scale(deploy, new_rs, replicas)
            return
        new_count = int(new_rs["spec"].get("replicas", 0))
        if new_count < replicas:
            room = self._surge_room(deploy, old, [new_rs])
            if room > 0:
                self._scale(deploy, new_rs, min(replicas, new_count + room))
        elif new_count > replicas:
            self._scale(deploy, new_rs, replicas)
        _, max_unavailable = self._limits(deploy)
        min_available = replicas - max_unavailable
        available = sum(int((rs.get("status") or {}).get("availableReplicas", 0)) for rs in old + [new_rs])
        removable = available - min_available
        for rs in old:  # oldest first
            count = int(rs["spec"].get("replicas", 0))
            if not count:
                continue
            # Pods of an old ReplicaSet that are not available can go at once: they serve nothing.
            unavailable_here = count - int((rs.get("status") or {}).get("availableReplicas", 0))
            cut = min(count, max(removable, 0) + max(unavailable_here, 0))
            if cut <= 0:
                continue
            self._scale(deploy, rs, count - cut)
            removable -= max(cut - max(unavailable_here, 0), 0)

    def _recreate(
        self, deploy: dict[str, Any], new_rs: dict[str, Any], old: list[dict[str, Any]], replicas: int
    ) -> None:
        for rs in old:
            self._scale(deploy, rs, 0)
        ns = deploy["metadata"]["namespace"]
        old_uids = {rs["metadata"]["uid"] for rs in old}
        remaining = [p for p in self.store.list(POD, ns)[0] if any(owned_by(p, uid) for uid in old_uids)]
        if not remaining:
            self._scale(deploy, new_rs, replicas)

    def _cleanup(self, deploy: dict[str, Any], old: list[dict[str, Any]]) -> None:
        limit = int(deploy["spec"].get("revisionHistoryLimit", 10))
        idle = [
            rs
            for rs in old
            if not int(rs["spec"].get("replicas", 0)) and not int((rs.get("status") or {}).get("replicas", 0))
        ]
        for rs in idle[: max(len(idle) - limit, 0)]:
            self.reg.delete(RS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def deployment_status(self, deploy: dict[str, Any]) -> None:
        meta, spec = deploy["metadata"], deploy["spec"]
        rss = self._owned_replicasets(deploy)
        template = spec.get("template") or {}
        new_rs = current_replicaset(template, rss)
        statuses = [rs.get("status") or {} for rs in rss]
        replicas = int(spec.get("replicas", 1))
        total = sum(s.get("replicas", 0) for s in statuses)
        ready = sum(s.get("readyReplicas", 0) for s in statuses)
        available = sum(s.get("availableReplicas", 0) for s in statuses)
        updated = (new_rs.get("status") or {}).get("replicas", 0) if new_rs else 0
        new_ready = (new_rs.get("status") or {}).get("availableReplicas", 0) if new_rs else 0
        _, max_unavailable = self._limits(deploy) if (spec.get("strategy") or {}).get("type") != "Recreate" else (0, 0)
        old_status = deploy.get("status") or {}
        old_conditions = {c["type"]: c for c in old_status.get("conditions") or []}
        stamp = now_rfc3339()

        def condition(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
            prev = old_conditions.get(ctype)
            changed = not prev or prev.get("status") != status
            same = prev and prev.get("reason") == reason and prev.get("message") == message
            return {
                "type": ctype,
                "status": status,
                "reason": reason,
                "message": message,
                "lastUpdateTime": prev["lastUpdateTime"] if same and prev else stamp,
                "lastTransitionTime": stamp if changed else prev["lastTransitionTime"],
            }

        is_available = available >= replicas - max_unavailable
        complete = new_rs is not None and updated == replicas and total == replicas and new_ready == replicas
        rs_name = new_rs["metadata"]["name"] if new_rs else meta["name"]
        conditions = [
            condition(
                "Available",
                "True" if is_available else "False",
                "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if is_available
                else "Deployment does not have minimum availability.",
            ),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" has successfully progressed.'
                if complete
                else f'ReplicaSet "{rs_name}" is progressing.',
            ),
        ]
        status: dict[str, Any] = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": conditions,
        }
        if total - available > 0:
            status["unavailableReplicas"] = total - available
        for key in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas"):
            if not status[key]:
                status.pop(key)
        revision = (new_rs or {}).get("metadata", {}).get("annotations", {}).get(REVISION)
        if revision and (meta.get("annotations") or {}).get(REVISION) != revision:
            fresh = self.store.get(DEPLOY, meta["namespace"], meta["name"])
            fresh["metadata"].setdefault("annotations", {})[REVISION] = revision
            deploy = self.store.update(DEPLOY, fresh)
        if status != deploy.get("status"):
            deploy["status"] = status
            self.store.update(DEPLOY, deploy, status_only=True)

    # -- Endpoints -------------------------------------------------------------------------

    def sync_endpoints(self, svc: dict[str, Any], all_pods: list[dict[str, Any]]) -> None:
        meta, spec = svc["metadata"], svc.get("spec") or {}
        selector = spec.get("selector")
        if not selector:
            return  # Endpoints of a Service without selector are the user's to manage
        ns = meta["namespace"]
        ports = spec.get("ports") or []
        groups: dict[tuple[tuple[str, int, str], ...], dict[str, list[dict[str, Any]]]] = {}
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
                key = tuple(resolved)
                group = groups.setdefault(key, {"addresses": [], "notReadyAddresses": []})
                address = {
                    "ip": ip,
                    "nodeName": (pod.get("spec") or {}).get("nodeName"),
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": pmeta["name"], "uid": pmeta["uid"]},
                }
                group["addresses" if pod_ready(pod) else "notReadyAddresses"].append(address)
        subsets = []
        for key, group in sorted(groups.items()):
            subset: dict[str, Any] = {
                "ports": [
                    {"name": n, "port": port, "protocol": proto} if n else {"port": port, "protocol": proto}
                    for n, port, proto in key
                ]
            }
            for field in ("addresses", "notReadyAddresses"):
                if group[field]:
                    subset[field] = sorted(group[field], key=lambda a: a["ip"])
            subsets.append(subset)
        existing = self.store.find(EP, ns, meta["name"])
        body = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": meta["name"], "namespace": ns, "labels": meta.get("labels") or {}},
        }
        if subsets:
            body["subsets"] = subsets
        if existing is None:
            self.reg.create(EP, ns, body)
        elif existing.get("subsets") != body.get("subsets"):
            existing["subsets"] = subsets
            if not subsets:
                existing.pop("subsets")
            self.store.update(EP, existing)

    # -- garbage collection and namespaces -------------------------------------------------

    def collect_garbage(self) -> None:
        uids = set()
        for kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"):
            uids |= {o["metadata"]["uid"] for o in self.store.list(BY_KIND[kind])[0]}
        for kind in ("ReplicaSet", "Pod"):
            for obj in self.store.list(BY_KIND[kind])[0]:
                refs = obj["metadata"].get("ownerReferences") or []
                if (
                    refs
                    and not any(ref.get("uid") in uids for ref in refs)
                    and not obj["metadata"].get("deletionTimestamp")
                ):
                    self.reg.delete(BY_KIND[kind], obj["metadata"]["namespace"], obj["metadata"]["name"])
        services = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in self.store.list(SVC)[0]}
        for ep in self.store.list(EP)[0]:
            if (ep["metadata"]["namespace"], ep["metadata"]["name"]) not in services:
                self.reg.delete(EP, ep["metadata"]["namespace"], ep["metadata"]["name"])

    def sync_namespaces(self) -> None:
        for ns in self.store.list(NS)[0]:
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            name = ns["metadata"]["name"]
            if (ns.get("status") or {}).get("phase") != "Terminating":
                ns["status"] = {"phase": "Terminating"}
                self.store.update(NS, ns, status_only=True)
            remaining = 0
            for res in BY_KIND.values():
                if not res.namespaced:
                    continue
                for obj in self.store.list(res, name)[0]:
                    remaining += 1
                    if not obj["metadata"].get("deletionTimestamp"):
                        self.reg.delete(res, name, obj["metadata"]["name"])
            if not remaining:
                self.store.delete(NS, "", name)


def current_replicaset(template: dict[str, Any], rss: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ReplicaSet whose pod template is the Deployment's (its hash label aside)."""
    return next((rs for rs in rss if template_without_hash(rs["spec"]["template"]) == template), None)


def rs_sorted_key(rs: dict[str, Any]) -> tuple[int, str]:
    return (
        int((rs["metadata"].get("annotations") or {}).get(REVISION, "0")),
        rs["metadata"].get("creationTimestamp", ""),
    )


def resolve_target_port(pod: dict[str, Any], target: Any) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for ctr in (pod.get("spec") or {}).get("containers") or []:
        for p in ctr.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    return None
