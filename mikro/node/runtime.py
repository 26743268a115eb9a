"""The kubelet part: Pods become Docker containers, and stay as declared.

Each Pod is synced by one worker at a time, on every change of the Pod, on every Docker
event about its containers, and on a periodic pass; a sync compares what Docker has with
what the Pod declares and acts (podplan holds the pure part).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Any

from mikro.api import incluster
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import Change, now_rfc3339
from mikro.cli.printers import parse_time
from mikro.config import LABEL_PREFIX
from mikro.errors import ApiError
from mikro.node import atomicwriter, podplan, scheduling
from mikro.node import volumes as claims
from mikro.node.docker_backend import ContainerStream, Docker, DockerError, ImageNotFound, NotFound
from mikro.node.podplan import INFRA, PodContext
from mikro.node.prober import Prober

log = logging.getLogger("mikro.runtime")
POD, NODE = BY_KIND["Pod"], BY_KIND["Node"]
L = LABEL_PREFIX
# `mikro stop` is the day's end, like a node shutdown: each container gets SIGTERM and at most
# this long (less when its pod says so) before SIGKILL, as `docker stop` gives by default.
CLUSTER_STOP_GRACE = 10
# Docker events and back-off timers drive the syncs; a periodic look (and the sweep of
# orphaned containers) only catches what they missed: every RESYNC_SECONDS one list of the
# containers, syncing the pods whose containers changed since their last sync; every
# FULL_RESYNC_SECONDS a sync of every pod, a safety net (a failed sync is tried again on its
# own, backing off). (Syncing all 200 pods of 100 Deployments every 30 s took 9% of a CPU at
# idle: four Docker calls per pod; every 300 s, about 1%. The list alone: 5 ms of CPU for 60
# containers, so every 10 s a change no event told of is caught within 10 s for well under 1%.)
RESYNC_SECONDS = 10.0
FULL_RESYNC_SECONDS = 1800.0
EVENTS_CONNECT_WAIT = 5.0
# How long a terminating pod waits for the proxies to stop routing to it.
UNROUTE_TIMEOUT = 3.0
# A status write refused because the pod changed meanwhile is synced again at once, this many
# times in a row; then the sync backs off as a failed one.
MAX_CONFLICTS_IN_A_ROW = 5
# How long `boot` waits for syncs under way before it starts containers in place.
BOOT_WAIT_FOR_SYNCS = 30.0


class StatusConflict(Exception):
    """A pod's status write lost to another writer's (409): sync it again."""


def docker_time(stamp: str | None) -> str | None:
    if not stamp or stamp.startswith("0001-"):
        return None
    return stamp[:19] + "Z"


def host_memory() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


class PodRuntime:
    def __init__(self, registry: Registry, docker: Docker, ctx: PodContext, workers: int = 8) -> None:
        self.reg = registry
        self.store = registry.store
        self.docker = docker
        self.ctx = ctx
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="podworker")
        self.infra_starts = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="infrastart")
        self.lock = threading.Lock()
        self.dirty: set[str] = set()
        self.running: set[str] = set()
        self.index: dict[str, tuple[str, str]] = {}  # uid -> (namespace, name)
        self.wakeups: dict[str, float] = {}  # uid -> monotonic time of a due back-off
        self.failed: dict[str, int] = {}  # uid -> syncs failed in a row
        self.conflicts: dict[str, int] = {}  # uid -> status writes refused in a row (409)
        # While `boot` starts stopped containers in place, no pod syncs: a sync would see an app
        # container not started yet as exited and run a second one in the same pod (its port
        # taken, it would crash). The pods asked for meanwhile are synced once boot is done.
        self.booting = False
        self.held: set[str] = set()
        self.exits: dict[str, float] = {}  # exited container id -> monotonic time of its exit
        self.pull_backoff: dict[tuple[str, str], tuple[int, float]] = {}
        self.stop_event = threading.Event()
        self.wait_unrouted: Callable[[str, float], None] | None = None
        # (pod, audience, seconds) -> a ServiceAccount token; the control plane sets it (incluster.py)
        self.issue_token: Callable[[dict[str, Any], str | None, int], str] | None = None
        self.prober = Prober(lambda ident, argv: self.docker.exec(ident, argv), self.enqueue, self._probe_failed)
        self.last_resync = self.last_full_resync = time.monotonic()
        self.pictures: dict[str, podplan.Picture] = {}  # uid -> its containers at its last sync
        self.own_writes: dict[str, dict[str, Any]] = {}  # uid -> the pod as its last status write made it
        self.capacity = (float(os.cpu_count() or 1), host_memory())

    # -- scheduling of syncs ---------------------------------------------------------------

    def enqueue(self, uid: str) -> None:
        with self.lock:
            if self.booting:
                self.held.add(uid)
                return
            if uid in self.running:
                self.dirty.add(uid)
                return
            self.running.add(uid)
        self.pool.submit(self._run, uid)

    def _run(self, uid: str) -> None:
        try:
            if not self.stop_event.is_set():
                self.sync(uid)
            self.failed.pop(uid, None)
            self.conflicts.pop(uid, None)
        except StatusConflict:
            # Another writer (the network's Routed condition) changed the pod since it was read:
            # sync again at once from the pod as it is now, as the kubelet's status manager does;
            # only a pod refused over and over waits like a failed sync.
            self.conflicts[uid] = self.conflicts.get(uid, 0) + 1
            if self.conflicts[uid] <= MAX_CONFLICTS_IN_A_ROW:
                with self.lock:
                    self.dirty.add(uid)
            else:
                log.warning("sync of pod %s: its status write was refused %d times in a row", uid, self.conflicts[uid])
                self._back_off(uid)
        except Exception:  # noqa: BLE001 - one pod's failure must not stop the others
            log.exception("sync of pod %s failed", uid)
            self._back_off(uid)
        finally:
            with self.lock:
                self.running.discard(uid)
                again = uid in self.dirty
                self.dirty.discard(uid)
            if again:
                self.enqueue(uid)

    def _back_off(self, uid: str) -> None:
        """As the kubelet's pod workers: a failed sync is tried again (10 s, doubling to 5 min)."""
        self.conflicts.pop(uid, None)
        self.failed[uid] = self.failed.get(uid, 0) + 1
        due = time.monotonic() + podplan.back_off(self.failed[uid])
        self.wakeups[uid] = min(self.wakeups.get(uid, due), due)

    def start(self) -> None:
        for pod in self.store.list(POD)[0]:
            self.index[pod["metadata"]["uid"]] = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        with self.lock:
            self.booting = True  # (the changes seen from here on are synced after the boot)
        self.store.watch(self._on_change)
        # The engine's events are followed before the boot starts containers: a container that
        # ends between the boot and a later subscription would be seen by no one.
        connected = threading.Event()
        threading.Thread(
            target=self.docker.events,
            args=(self._on_docker_event, self.stop_event, self._engine_back, connected),
            name="docker-events",
            daemon=True,
        ).start()
        if not connected.wait(EVENTS_CONNECT_WAIT):
            log.warning("the engine's event stream is not open yet; booting anyway")
        self.boot()
        self.prober.start()
        threading.Thread(target=self._periodic, name="pod-resync", daemon=True).start()

    def _on_change(self, change: Change) -> bool:
        if change.resource.kind == "Pod":
            meta = change.obj["metadata"]
            if change.type == "DELETED":
                self.index.pop(meta["uid"], None)
                self.own_writes.pop(meta["uid"], None)
                self.failed.pop(meta["uid"], None)
            else:
                self.index[meta["uid"]] = (meta["namespace"], meta["name"])
                own = self.own_writes.get(meta["uid"])
                if own is not None and change.type == "MODIFIED" and podplan.sans_version(change.obj) == own:
                    return False  # the status this runtime just wrote, nothing else: no new sync
            self.enqueue(meta["uid"])
        elif change.resource.kind in ("Secret", "ConfigMap", "PersistentVolumeClaim"):
            # A pod waiting for a missing Secret or ConfigMap may be able to start now.
            for uid, (ns, _) in list(self.index.items()):
                if ns == change.meta[0]:
                    self.enqueue(uid)
        return False

    def _on_docker_event(self, event: dict[str, Any]) -> None:
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        uid = attrs.get(L + "uid")
        if uid and attrs.get(L + "kind") == "pod" and event.get("status") in ("die", "destroy", "start", "oom", "stop"):
            self.enqueue(uid)

    def _engine_back(self) -> None:
        """The Docker engine restarted (its containers stopped with it): bring the pods back
        as `mikro start` does, in place, without counting restarts."""
        try:
            self.boot()
        except DockerError as exc:
            log.warning("resync after the engine came back: %s", exc)
            for uid in list(self.index):
                self.enqueue(uid)

    def _periodic(self) -> None:
        while not self.stop_event.wait(1.0):
            now = time.monotonic()
            for uid, due in list(self.wakeups.items()):
                if due <= now:
                    self.wakeups.pop(uid, None)
                    self.enqueue(uid)
            if now - self.last_resync >= RESYNC_SECONDS:
                self.last_resync = now
                self.resync_all()

    def resync_all(self, full: bool | None = None) -> None:
        """Sync the pods whose containers changed behind the events' back (all of them when
        `full`, or every FULL_RESYNC_SECONDS); remove containers of no pod."""
        now = time.monotonic()
        if full is None:
            full = now - self.last_full_resync >= FULL_RESYNC_SECONDS
        if full:
            self.last_full_resync = now
        uids = list(self.index)  # (every pod, kept by the change feed: none decoded)
        changed, orphans = podplan.changed_pods(uids, self.docker.containers(kind="pod"), self.pictures)
        for uid in uids if full else changed:
            self.enqueue(uid)
        for c in orphans:
            log.info("removing orphan container %s", c["Names"][0])
            self.docker.remove(c["Id"])

    def boot(self) -> None:
        """Bring back what `mikro stop` stopped: start existing containers in place (in
        parallel), then let the normal sync take over. Pods that had ended (Succeeded, Failed)
        stay ended. No pod syncs meanwhile (see `booting`)."""
        with self.lock:
            self.booting = True
        try:
            deadline = time.monotonic() + BOOT_WAIT_FOR_SYNCS
            while self.running and time.monotonic() < deadline:  # (after an engine restart)
                time.sleep(0.02)
            self._start_in_place()
        finally:
            with self.lock:
                self.booting = False
                held, self.held = self.held, set()
            for uid in dict.fromkeys([*list(self.index), *held]):
                self.enqueue(uid)

    def _start_in_place(self) -> None:
        ended = {
            p["metadata"]["uid"]
            for p in self.store.list(POD)[0]
            if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        }
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for c in self.docker.containers(kind="pod"):
            labels = c["Labels"]
            uid = labels.get(L + "uid")
            if uid not in self.index:
                self.docker.remove(c["Id"])
                continue
            key = (uid, labels.get(L + "container", ""))
            if key not in latest or int(labels.get(L + "attempt", 0)) > int(
                latest[key]["Labels"].get(L + "attempt", 0)
            ):
                latest[key] = c
        # A container on an earlier network of the cluster's name (removed and created again)
        # cannot start: the syncs recreate it.
        stopped = [
            (name, c)
            for (uid, name), c in latest.items()
            if c["State"] != "running" and uid not in ended and not self.docker.on_stale_network(c)
        ]
        # Each pod's infra container first, then its other containers (they join its network
        # namespace); the pods side by side.
        pods: dict[str, list[dict[str, Any]]] = {}
        for _, c in sorted(stopped, key=lambda item: item[0] != INFRA):
            pods.setdefault(c["Labels"].get(L + "uid", ""), []).append(c)

        def start_pod(containers: list[dict[str, Any]]) -> None:
            for c in containers:
                self._quiet(self.docker.start, c["Id"])

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(start_pod, pods.values()))
        log.info("boot: started %d containers", len(stopped))

    @staticmethod
    def _quiet(fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except DockerError as exc:
            log.warning("%s", exc)

    def shutdown(self, after_apps: Callable[[], None] | None = None) -> None:
        """Stop every pod container (honouring grace periods, in parallel); keep them.
        `after_apps` runs once every app container has stopped, beside the infra containers'
        stops (the engine tears their networks down one after the other: the longest part)."""
        self.stop_event.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        grace: dict[str, int] = {}
        for pod in self.store.list(POD)[0]:
            declared = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            grace[pod["metadata"]["uid"]] = min(declared, CLUSTER_STOP_GRACE)
        pods: dict[str, list[dict[str, Any]]] = {}
        for c in self.docker.containers(kind="pod"):
            if c["State"] == "running":
                pods.setdefault(c["Labels"].get(L + "uid", ""), []).append(c)
        # Each pod's infra container once its own app containers have stopped: no pod waits
        # for the slowest of all (a second wave after every app cost one more `docker stop`).
        every_app: list[Future[None]] = []
        with ThreadPoolExecutor(max_workers=32) as apps, ThreadPoolExecutor(max_workers=32) as infras:
            for uid, containers in pods.items():
                stopping = [
                    apps.submit(self._quiet, self.docker.stop, c["Id"], grace.get(uid, 30))
                    for c in containers
                    if c["Labels"].get(L + "container") != INFRA
                ]
                every_app += stopping
                for c in containers:
                    if c["Labels"].get(L + "container") == INFRA:
                        infras.submit(self._stop_after, stopping, c["Id"])
            if after_apps is not None:
                futures_wait(every_app)
                after_apps()

    def _stop_after(self, stopping: list[Future[None]], ident: str) -> None:
        futures_wait(stopping)
        self._quiet(self.docker.stop, ident, 0)

    # -- one pod ---------------------------------------------------------------------------

    def _observed(self, uid: str) -> dict[str, list[dict[str, Any]]]:
        """Containers of a pod by container name, newest attempt first."""
        out: dict[str, list[dict[str, Any]]] = {}
        for c in self.docker.containers(kind="pod", uid=uid):
            out.setdefault(c["Labels"].get(L + "container", ""), []).append(c)
        for items in out.values():
            items.sort(key=lambda c: int(c["Labels"].get(L + "attempt", 0)), reverse=True)
        return out

    def sync(self, uid: str) -> None:
        where = self.index.get(uid)
        pod = self.store.find(POD, *where) if where else None
        if pod is None or pod["metadata"]["uid"] != uid:
            self.prober.forget(uid)
            self.pictures.pop(uid, None)
            for c in self.docker.containers(kind="pod", uid=uid):
                self.docker.remove(c["Id"])
            self._remove_pod_dir(uid)
            return
        if pod["metadata"].get("deletionTimestamp"):
            self.prober.forget(uid)
            self._terminate(pod)
            return
        if not (pod.get("spec") or {}).get("nodeName"):
            blocked, tell = claims.unbound_claims(pod, self.store)
            if blocked:  # the scheduler's volume binding: wait for the claims to be bound
                self._unschedulable(pod, blocked, tell)
                return
            pod = self._schedule(pod)
            if pod is None:
                return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return
        observed = self._observed(uid)
        status = self._sync_containers(pod, observed)
        self._refresh_volumes(pod)
        self._write_status(pod, status)

    def _unschedulable(self, pod: dict[str, Any], message: str, tell: bool) -> None:
        status = dict(pod.get("status") or {})
        if [c.get("message") for c in status.get("conditions") or []] != [message]:
            status["phase"] = "Pending"
            status["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastTransitionTime": now_rfc3339(),
                }
            ]
            pod["status"] = status
            self.store.update(POD, pod, status_only=True)
            if tell:
                self.reg.events.record(pod, "FailedScheduling", message, "Warning", "default-scheduler")
        self.wakeups[pod["metadata"]["uid"]] = time.monotonic() + 5

    def _schedule(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        cpu, mem = podplan.requests_of(pod)
        used_cpu = used_mem = 0.0
        # (what the others request counts only for a pod that requests something: no list of
        # every pod, decoded, for each pod of 100 Deployments without requests)
        for other in self.store.list(POD)[0] if cpu or mem else []:
            if other["metadata"]["uid"] == pod["metadata"]["uid"] or not (other.get("spec") or {}).get("nodeName"):
                continue
            if other["metadata"].get("deletionTimestamp") is None and (other.get("status") or {}).get("phase") not in (
                "Succeeded",
                "Failed",
            ):
                c, m = podplan.requests_of(other)
                used_cpu, used_mem = used_cpu + c, used_mem + m
        cap_cpu, cap_mem = self.capacity
        problems = []
        node = self.store.find(NODE, "", self.ctx.node_name)
        unfit = scheduling.unfit_reason(pod.get("spec") or {}, node) if node is not None else ""
        if unfit:
            problems.append(unfit)
        if cpu and used_cpu + cpu > cap_cpu:
            problems.append("Insufficient cpu")
        if mem and used_mem + mem > cap_mem:
            problems.append("Insufficient memory")
        if problems:
            self._unschedulable(pod, f"0/1 nodes are available: 1 {', 1 '.join(problems)}.", True)
            return None
        pod["spec"]["nodeName"] = self.ctx.node_name
        pod = self.store.update(POD, pod)
        meta = pod["metadata"]
        self.reg.events.record(
            pod,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {self.ctx.node_name}",
            component="default-scheduler",
        )
        return pod

    # -- containers ------------------------------------------------------------------------

    def _lookup(self, ns: str):  # noqa: ANN202 - a closure for podplan
        def lookup(kind: str, name: str, key: str) -> str | None:
            obj = self.store.find(BY_KIND[kind], ns, name)
            if obj is None:
                return None
            files = podplan.volume_files(kind, obj, None)
            if not key:
                return json.dumps({k: v.decode(errors="replace") for k, v in files.items()})
            value = files.get(key)
            return value.decode(errors="replace") if value is not None else None

        return lookup

    def _pod_dir(self, uid: str) -> Path:
        return Path(self.ctx.state_dir) / "pods" / uid

    def _remove_pod_dir(self, uid: str) -> None:
        shutil.rmtree(self._pod_dir(uid), ignore_errors=True)
        for vol in self.docker.volumes(uid=uid):
            try:
                vol.remove(force=True)
            except DockerError:
                pass

    def _mounts(self, pod: dict[str, Any], ctr: dict[str, Any]) -> dict[str, dict[str, str]]:
        """Docker binds for a container's volumeMounts: emptyDir and PVCs become Docker
        volumes, configMap and secret volumes files under the state directory."""
        meta = pod["metadata"]
        uid = meta["uid"]
        volumes = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
        binds: dict[str, dict[str, str]] = {}
        for mount in ctr.get("volumeMounts") or []:
            vol = volumes.get(mount.get("name"))
            if vol is None:
                raise podplan.MissingReference(f'volume "{mount.get("name")}" is not declared')
            mode = "ro" if mount.get("readOnly") else "rw"
            if "persistentVolumeClaim" in vol:
                source = claims.claim_path(meta["namespace"], vol["persistentVolumeClaim"], self.store)
            elif "hostPath" in vol:
                source = vol["hostPath"].get("path", "/")
            elif "configMap" in vol or "secret" in vol:
                files, file_mode = self._object_files(meta["namespace"], vol, missing_ok=False)
                directory = self._object_volume_dir(uid, vol)
                atomicwriter.write(directory, files or {}, file_mode)
                source, mode = str(directory), "ro"
            elif "projected" in vol:
                source, mode = self._projected(pod, vol), "ro"
            else:  # emptyDir and anything else mikro keeps as a pod-lifetime volume
                source = self.docker.ensure_volume(
                    f"{self.ctx.cluster}_{podplan.short_uid(pod)}_{vol['name']}",
                    {L + "kind": "emptydir", L + "uid": uid},
                )
            target = mount.get("mountPath", "/")
            if mount.get("subPath") and source.startswith("/"):
                source = podplan.contained(source, mount["subPath"], "subPath")
            binds[source] = {"bind": target, "mode": mode}
        return binds

    def _object_volume_dir(self, uid: str, vol: dict[str, Any]) -> Path:
        volumes_dir = self._pod_dir(uid) / "volumes"
        volumes_dir.mkdir(parents=True, exist_ok=True)
        return Path(podplan.contained(str(volumes_dir), str(vol["name"]), "volume name"))

    def _object_files(
        self, ns: str, vol: dict[str, Any], missing_ok: bool
    ) -> tuple[dict[str, bytes] | None, int]:
        """A configMap or secret volume's files and mode; None for a missing object when
        `missing_ok` (a refresh keeps what the pod has), an error otherwise unless optional."""
        kind = "ConfigMap" if "configMap" in vol else "Secret"
        ref = vol.get("configMap") or vol.get("secret") or {}
        name = ref.get("name") or ref.get("secretName", "")
        mode = int(ref.get("defaultMode") or 0o644) & 0o777
        obj = self.store.find(BY_KIND[kind], ns, name)
        if obj is None:
            if ref.get("optional"):
                obj = {}
            elif missing_ok:
                return None, mode
            else:
                raise podplan.MissingReference(f'{kind.lower()} "{name}" not found')
        return podplan.volume_files(kind, obj, ref.get("items")), mode

    def _refresh_volumes(self, pod: dict[str, Any]) -> None:
        """configMap and secret volumes follow their objects while the pod runs, as the
        kubelet's sync makes them (a subPath mount keeps the file it started with)."""
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            if "configMap" not in vol and "secret" not in vol:
                continue
            directory = self._object_volume_dir(pod["metadata"]["uid"], vol)
            if not directory.is_dir():
                continue  # no container mounts it yet
            files, mode = self._object_files(pod["metadata"]["namespace"], vol, missing_ok=True)
            if files is not None:
                atomicwriter.write(directory, files, mode)

    def _service_env(self, pod: dict[str, Any]) -> dict[str, str]:
        """KUBERNETES_SERVICE_HOST/PORT and the docker-links variables (incluster.py)."""
        ns = pod["metadata"]["namespace"]
        services = self.store.list(BY_KIND["Service"], ns)[0]
        return incluster.service_env(pod, services, self.store.find(BY_KIND["Service"], "default", incluster.NAME))

    def _projected(self, pod: dict[str, Any], vol: dict[str, Any]) -> str:
        """A projected volume's files (token, ca.crt, namespace, ...) under the pod's directory."""
        ns = pod["metadata"]["namespace"]

        def issue(p: dict[str, Any], audience: str | None, seconds: int) -> str:
            if self.issue_token is None:
                raise podplan.MissingReference("no ServiceAccount token issuer in this control plane")
            return self.issue_token(p, audience, seconds)

        try:
            files = incluster.projected_files(pod, vol, lambda kind, name: self.store.find(BY_KIND[kind], ns, name), issue)
        except KeyError as exc:
            raise podplan.MissingReference(str(exc.args[0])) from None
        volumes_dir = self._pod_dir(pod["metadata"]["uid"]) / "volumes"
        directory = Path(podplan.contained(str(volumes_dir), str(vol["name"]), "volume name"))
        directory.mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            target = Path(podplan.contained(str(directory), path, "volume file"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o644)
        return str(directory)

    def _ensure_image(self, pod: dict[str, Any], ctr: dict[str, Any]) -> tuple[bool, str | None, str | None]:
        """(ready, waiting reason, message). Pulls as imagePullPolicy says; offline, an image
        the host already has is used even under `Always`, with a warning event."""
        image = ctr["image"]
        policy = ctr.get("imagePullPolicy") or "IfNotPresent"
        key = (pod["metadata"]["uid"], ctr["name"])
        local = self.docker.image_recent(image) if policy != "Always" else self.docker.image(image)
        if local is not None and policy in ("IfNotPresent", "Never"):
            return True, None, None
        if local is None and policy == "Never":
            return False, "ErrImageNeverPull", f'Container image "{image}" is not present with pull policy of Never'
        failures, due = self.pull_backoff.get(key, (0, 0.0))
        if failures and time.monotonic() < due:
            if local is not None:
                return True, None, None
            self.wakeups[key[0]] = due
            return False, "ImagePullBackOff", f'Back-off pulling image "{image}"'
        self.reg.events.record(pod, "Pulling", f'Pulling image "{image}"', component="kubelet")
        started = time.monotonic()
        try:
            self.docker.pull(image)
        except DockerError as exc:
            message = str(getattr(exc, "explanation", None) or exc)
            if local is not None:
                self.pull_backoff[key] = (failures + 1, time.monotonic() + podplan.back_off(failures + 1))
                self.reg.events.record(
                    pod,
                    "Pulled",
                    f'Pull of "{image}" failed ({message}); using the image present on the host',
                    "Warning",
                    "kubelet",
                )
                return True, None, None
            self.pull_backoff[key] = (failures + 1, time.monotonic() + podplan.back_off(failures + 1))
            self.wakeups[key[0]] = self.pull_backoff[key][1]
            self.reg.events.record(pod, "Failed", f'Failed to pull image "{image}": {message}', "Warning", "kubelet")
            return False, "ErrImagePull", f'failed to pull image "{image}": {message}'
        self.pull_backoff.pop(key, None)
        self.reg.events.record(
            pod,
            "Pulled",
            f'Successfully pulled image "{image}" in {time.monotonic() - started:.3f}s',
            component="kubelet",
        )
        return True, None, None

    def _ensure_infra(self, pod: dict[str, Any], observed: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
        services = self.store.list(BY_KIND["Service"], pod["metadata"]["namespace"])[0]
        pspec = pod.get("spec") or {}
        aliases = podplan.headless_aliases(
            pod["metadata"]["namespace"],
            pod["metadata"].get("labels") or {},
            services,
            (pspec.get("hostname") or pod["metadata"]["name"]) if pspec.get("subdomain") else None,
            pspec.get("subdomain"),
        )
        spec = podplan.infra_spec(self.ctx, pod, aliases)
        current = (observed.get(INFRA) or [None])[0]
        if current is not None and (
            current["Labels"].get(L + "spec-hash") != spec.labels[L + "spec-hash"]
            or self.docker.on_stale_network(current)
        ):
            self.docker.remove(current["Id"])
            current = None
        if current is None:
            # (no image inspection first: the create's own 404 says it is missing, one Docker
            # round trip less on every new pod's way to running)
            try:
                ident = self.docker.create(spec)
            except ImageNotFound:
                raise podplan.MissingReference(
                    f"the infra image {self.ctx.infra_image} is missing; run `mikro images prepare`"
                ) from None
            starting = self.infra_starts.submit(self.docker.start, ident)
            try:
                observed.update(self._create_ahead(pod, ident, observed))
            except Exception:  # noqa: BLE001 - a head start only: the sync does it otherwise
                log.debug("creating the containers of pod %s ahead failed", pod["metadata"]["name"], exc_info=True)
            starting.result()
        elif current["State"] != "running":
            ident = current["Id"]
            self.docker.start(ident)
        else:
            ident = current["Id"]
        return self.docker.inspect(ident)

    def _sync_containers(self, pod: dict[str, Any], observed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        spec = pod.get("spec") or {}
        meta = pod["metadata"]
        prev_status = pod.get("status") or {}
        prev_cs = {cs["name"]: cs for cs in prev_status.get("containerStatuses") or []}
        waiting: dict[str, tuple[str, str]] = {}
        try:
            infra = self._ensure_infra(pod, observed)
        except (podplan.MissingReference, DockerError) as exc:
            infra = None
            for ctr in spec.get("containers") or []:
                waiting[ctr["name"]] = ("ContainerCreating", str(exc))
        pod_ip = ""
        if infra is not None:
            nets = (infra.get("NetworkSettings") or {}).get("Networks") or {}
            pod_ip = (nets.get(self.ctx.network) or {}).get("IPAddress", "")
            if spec.get("hostNetwork"):
                pod_ip = self.ctx.host_ip
        policy = spec.get("restartPolicy", "Always")
        now = time.time()
        init_done = True
        alive: list[str] = []  # the containers this sync found or left running
        if infra is not None:
            for ctr in spec.get("initContainers") or []:
                result = self._sync_one(
                    pod,
                    ctr,
                    observed.get(ctr["name"]) or [],
                    infra,
                    pod_ip,
                    "OnFailure" if policy == "Always" else policy,
                    now,
                    prev_cs,
                    waiting,
                    run_once=True,
                )
                if result == "running":
                    alive.append(ctr["name"])
                if result != "done":
                    init_done = False
                    break
        for ctr in spec.get("containers") or []:
            if infra is None or not init_done:
                waiting.setdefault(ctr["name"], ("PodInitializing" if not init_done else "ContainerCreating", ""))
                continue
            attempts = observed.get(ctr["name"]) or []
            if self._sync_one(pod, ctr, attempts, infra, pod_ip, policy, now, prev_cs, waiting) == "running":
                alive.append(ctr["name"])
        fresh = self._observed(meta["uid"])
        if any((fresh.get(name) or [{}])[0].get("State") != "running" for name in alive):
            # A container that ended during this sync: its Docker event may have come before this
            # sync began, or be lost (the stream reconnecting); the next sync restarts it.
            with self.lock:
                self.dirty.add(meta["uid"])
        self.pictures[meta["uid"]] = podplan.picture([c for cs in fresh.values() for c in cs])
        if infra is not None:
            for ctr in spec.get("containers") or []:
                latest = (fresh.get(ctr["name"]) or [None])[0]
                running = latest is not None and latest["State"] == "running"
                self.prober.track(meta["uid"], ctr, latest["Id"] if running else None, infra["Id"], pod_ip)
        return self._status(pod, fresh, pod_ip, waiting, infra)

    def _sync_one(
        self,
        pod: dict[str, Any],
        ctr: dict[str, Any],
        attempts: list[dict[str, Any]],
        infra: dict[str, Any],
        pod_ip: str,
        policy: str,
        now: float,
        prev_cs: dict[str, dict[str, Any]],
        waiting: dict[str, tuple[str, str]],
        run_once: bool = False,
    ) -> str:
        """Converge one container; returns "running", "waiting" or "done" (exited, not to restart)."""
        name = ctr["name"]
        current = attempts[0] if attempts else None
        if current is not None and (current.get("HostConfig") or {}).get("NetworkMode") != f"container:{infra['Id']}":
            # The infra container was replaced: this one holds a dead network namespace.
            self.docker.remove(current["Id"])
            attempts = attempts[1:]
            prev_cs = {
                **prev_cs,
                name: {"containerID": current["Id"], "restartCount": int(current["Labels"].get(L + "attempt", 0))},
            }
            current = None
        if current is not None and current["State"] == "running":
            return "running"
        if current is not None and current["State"] in ("created",):
            # (made while its infra container started: see `_create_ahead`)
            return self._start_app(pod, name, current["Id"], waiting)
        if current is not None:
            restart_count = int(current["Labels"].get(L + "attempt", 0))
        elif (prev_cs.get(name) or {}).get("containerID"):
            # Removed behind mikro's back: a new run, counted as a restart, without back-off.
            restart_count = int(prev_cs[name].get("restartCount", 0)) + 1
        else:
            restart_count = 0
        if current is not None:
            info = self.docker.inspect(current["Id"]) or {}
            state = info.get("State") or {}
            code = int(state.get("ExitCode", 0))
            if run_once and code == 0:
                return "done"
            if not podplan.should_restart(policy, code):
                return "done"
            finished = parse_time(docker_time(state.get("FinishedAt"))) or now
            # As the kubelet: the first restart at once, then 10 s doubling to 5 minutes, so that
            # CrashLoopBackOff always shows a restart (and `logs --previous` has a run to show).
            # The exit's age is read once from the wall clock; the back-off runs on the monotonic one.
            delay = podplan.restart_delay(restart_count)
            if delay:
                exited = self.exits.setdefault(current["Id"], podplan.exited_at(time.monotonic(), now, finished, delay))
                if time.monotonic() < exited + delay:
                    self.wakeups[pod["metadata"]["uid"]] = exited + delay
                    waiting[name] = (
                        "CrashLoopBackOff",
                        f"back-off {int(delay)}s restarting failed container={name} "
                        f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}",
                    )
                    self.reg.events.record(
                        pod,
                        "BackOff",
                        f"Back-off restarting failed container {name} in pod {pod['metadata']['name']}",
                        "Warning",
                        "kubelet",
                    )
                    return "waiting"
            self.exits.pop(current["Id"], None)
            restart_count += 1
        ready, reason, message = self._ensure_image(pod, ctr)
        if not ready:
            waiting[name] = (reason or "ErrImagePull", message or "")
            return "waiting"
        try:
            cspec, warnings = self._app_spec(pod, ctr, infra["Id"], pod_ip, restart_count)
        except podplan.MissingReference as exc:
            waiting[name] = ("CreateContainerConfigError", str(exc))
            self.reg.events.record(pod, "Failed", f"Error: {exc}", "Warning", "kubelet")
            self.wakeups[pod["metadata"]["uid"]] = time.monotonic() + 5
            return "waiting"
        for warning in warnings:
            self.reg.events.record(pod, "UnsupportedSecurityField", warning, "Warning", "kubelet")
        try:
            ident = self.docker.create(cspec)
        except DockerError as exc:
            return self._run_error(pod, name, exc, waiting)
        self.reg.events.record(pod, "Created", f"Created container {name}", component="kubelet")
        if self._start_app(pod, name, ident, waiting) != "running":
            return "waiting"
        for old in attempts[1:]:  # keep only the previous run, for `logs --previous`
            self.docker.remove(old["Id"])
        return "running"

    def _app_spec(
        self, pod: dict[str, Any], ctr: dict[str, Any], infra_id: str, pod_ip: str, restart_count: int
    ) -> tuple[Any, list[str]]:
        """An app container's spec and the security warnings for it (MissingReference when a
        Secret or ConfigMap it needs is missing)."""
        env = podplan.resolve_env(pod, ctr, pod_ip, self.ctx.host_ip, self._lookup(pod["metadata"]["namespace"]))
        env = {**self._service_env(pod), **env}
        mounts = self._mounts(pod, ctr)
        image = self.docker.image_recent(ctr["image"]) or {}
        sec, warnings = podplan.security(pod, ctr, str((image.get("Config") or {}).get("User") or ""))
        return podplan.app_spec(self.ctx, pod, ctr, infra_id, restart_count, env, mounts, sec), warnings

    def _start_app(self, pod: dict[str, Any], name: str, ident: str, waiting: dict[str, tuple[str, str]]) -> str:
        try:
            self.docker.start(ident)
        except DockerError as exc:
            return self._run_error(pod, name, exc, waiting)
        self.reg.events.record(pod, "Started", f"Started container {name}", component="kubelet")
        return "running"

    def _run_error(self, pod: dict[str, Any], name: str, exc: DockerError, waiting: dict[str, tuple[str, str]]) -> str:
        waiting[name] = ("RunContainerError", str(getattr(exc, "explanation", None) or exc))
        self.reg.events.record(pod, "Failed", f"Error: {waiting[name][1]}", "Warning", "kubelet")
        return "waiting"

    def _create_ahead(
        self, pod: dict[str, Any], infra_id: str, observed: dict[str, list[dict[str, Any]]]
    ) -> dict[str, list[dict[str, Any]]]:
        """While a new pod's infra container starts (the longest Docker call of a pod's start):
        create its app containers, to be started once it runs. Only what needs nothing of the
        running infra (not the pod's IP in its environment) and nothing done first (no init
        containers, an image on the host); anything else, or any failure, is left to the sync,
        which words it. The list entries `_sync_one` reads, by container name."""
        spec = pod.get("spec") or {}
        made: dict[str, list[dict[str, Any]]] = {}
        if spec.get("initContainers"):
            return made
        # A container that ran before (its attempts, or a status naming one) restarts by the
        # sync's own rules: its restart count, `logs --previous`.
        ran = {cs.get("name") for cs in (pod.get("status") or {}).get("containerStatuses") or [] if cs.get("containerID")}
        for ctr in spec.get("containers") or []:
            if ctr["name"] in observed or ctr["name"] in ran:
                continue
            if podplan.needs_pod_ip(ctr) or ctr.get("imagePullPolicy") == "Always":
                continue
            if self.docker.image_recent(ctr["image"]) is None:
                continue
            try:
                cspec, warnings = self._app_spec(pod, ctr, infra_id, "", 0)
                ident = self.docker.create(cspec)
            except (podplan.MissingReference, DockerError):
                continue
            for warning in warnings:
                self.reg.events.record(pod, "UnsupportedSecurityField", warning, "Warning", "kubelet")
            self.reg.events.record(pod, "Created", f"Created container {ctr['name']}", component="kubelet")
            made[ctr["name"]] = [
                {"Id": ident, "State": "created", "Labels": cspec.labels, "HostConfig": {"NetworkMode": cspec.network_mode}}
            ]
        return made

    def _container_status(
        self, uid: str, ctr: dict[str, Any], attempts: list[dict[str, Any]], waiting: tuple[str, str] | None
    ) -> dict[str, Any]:
        cs: dict[str, Any] = {
            "name": ctr["name"],
            "image": ctr["image"],
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {},
            "lastState": {},
        }
        infos = [self.docker.inspect(c["Id"]) or {} for c in attempts[:2]]
        if attempts:
            cs["restartCount"] = int(attempts[0]["Labels"].get(L + "attempt", 0))
            cs["containerID"] = "docker://" + attempts[0]["Id"]
            cs["imageID"] = "docker-pullable://" + str(infos[0].get("Image", ""))
        if len(infos) > 1:
            cs["lastState"] = {"terminated": self._terminated(infos[1])}
        if waiting:
            cs["state"] = {"waiting": {"reason": waiting[0], **({"message": waiting[1]} if waiting[1] else {})}}
            if infos and waiting[0] == "CrashLoopBackOff":
                cs["lastState"] = {"terminated": self._terminated(infos[0])}
            return cs
        if not infos:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
            return cs
        state = infos[0].get("State") or {}
        if state.get("Running"):
            cs["state"] = {"running": {"startedAt": docker_time(state.get("StartedAt"))}}
            cs["started"] = self.prober.started(uid, ctr["name"], attempts[0]["Id"])
            cs["ready"] = self.prober.ready(uid, ctr["name"], attempts[0]["Id"])
        elif docker_time(state.get("StartedAt")):
            cs["state"] = {"terminated": self._terminated(infos[0])}
        else:
            cs["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return cs

    @staticmethod
    def _terminated(info: dict[str, Any]) -> dict[str, Any]:
        state = info.get("State") or {}
        code = int(state.get("ExitCode", 0))
        reason = "OOMKilled" if state.get("OOMKilled") else ("Completed" if code == 0 else "Error")
        return {
            "exitCode": code,
            "reason": reason,
            "startedAt": docker_time(state.get("StartedAt")),
            "finishedAt": docker_time(state.get("FinishedAt")),
            "containerID": "docker://" + info.get("Id", ""),
        }

    def _status(
        self,
        pod: dict[str, Any],
        observed: dict[str, list[dict[str, Any]]],
        pod_ip: str,
        waiting: dict[str, tuple[str, str]],
        infra: dict[str, Any] | None,
    ) -> dict[str, Any]:
        spec = pod.get("spec") or {}
        prev = pod.get("status") or {}
        uid = pod["metadata"]["uid"]
        statuses = [
            self._container_status(uid, c, observed.get(c["name"]) or [], waiting.get(c["name"]))
            for c in spec.get("containers") or []
        ]
        init_statuses = [
            self._container_status(uid, c, observed.get(c["name"]) or [], waiting.get(c["name"]))
            for c in spec.get("initContainers") or []
        ]
        for cs in init_statuses:
            cs["ready"] = "terminated" in cs["state"] and cs["state"]["terminated"]["exitCode"] == 0
        running = [cs for cs in statuses if "running" in cs["state"]]
        terminated = [cs for cs in statuses if "terminated" in cs["state"]]
        policy = spec.get("restartPolicy", "Always")
        restarting = [cs for cs in statuses if (cs["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff"]
        if statuses and len(terminated) == len(statuses) and policy != "Always":
            # A pod ends only when none of its containers will be restarted.
            failed = any(cs["state"]["terminated"]["exitCode"] != 0 for cs in terminated)
            phase = "Succeeded" if not failed else ("Failed" if policy == "Never" else "Running")
        elif running or terminated or restarting:
            phase = "Running"
        else:
            phase = "Pending"
        all_ready = bool(statuses) and all(cs["ready"] for cs in statuses)
        init_ready = all(cs["ready"] for cs in init_statuses)
        old_conditions = {c["type"]: c for c in prev.get("conditions") or []}
        stamp = now_rfc3339()

        def cond(ctype: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
            status = "True" if ok else "False"
            prev_c = old_conditions.get(ctype)
            out = {
                "type": ctype,
                "status": status,
                "lastProbeTime": None,
                "lastTransitionTime": prev_c["lastTransitionTime"] if prev_c and prev_c["status"] == status else stamp,
            }
            if reason and not ok:
                out["reason"] = reason
            return out

        not_ready = [cs["name"] for cs in statuses if not cs["ready"]]
        conditions = [
            cond("PodReadyToStartContainers", infra is not None),
            cond("Initialized", init_ready, "ContainersNotInitialized"),
            cond("Ready", all_ready, "ContainersNotReady"),
            cond("ContainersReady", all_ready, "ContainersNotReady"),
            cond("PodScheduled", True),
        ]
        for c in conditions:
            if c["type"] in ("Ready", "ContainersReady") and not_ready and c["status"] == "False":
                c["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
        # Conditions other components own (the network's io.mikro/Routed) stay, as the kubelet
        # keeps a readiness gate's.
        owned = {c["type"] for c in conditions}
        conditions += [c for c in prev.get("conditions") or [] if c.get("type") not in owned]
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.ctx.host_ip,
            "hostIPs": [{"ip": self.ctx.host_ip}],
            "startTime": prev.get("startTime") or stamp,
            "containerStatuses": statuses,
            "qosClass": prev.get("qosClass", "BestEffort"),
        }
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        if pod_ip:
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
        return status

    def _write_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        if status == pod.get("status"):
            return
        pod["status"] = status
        uid = pod["metadata"]["uid"]
        self.own_writes[uid] = podplan.sans_version(pod)
        try:
            self.store.update(POD, pod, status_only=True)
        except ApiError as err:
            self.own_writes.pop(uid, None)
            if err.code == 409:
                raise StatusConflict(uid) from None
            if err.code != 404:
                raise

    def _probe_failed(self, uid: str, name: str, kind: str, message: str, restart: bool) -> None:
        where = self.index.get(uid)
        pod = self.store.find(POD, *where) if where else None
        if pod is None:
            return
        self.reg.events.record(pod, "Unhealthy", f"{kind.capitalize()} probe failed: {message}", "Warning", "kubelet")
        if not restart:
            return
        self.reg.events.record(
            pod, "Killing", f"Container {name} failed {kind} probe, will be restarted", component="kubelet"
        )
        grace = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        for c in (self._observed(uid).get(name) or [])[:1]:
            self.docker.stop(c["Id"], grace)

    def _terminate(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        ip = (pod.get("status") or {}).get("podIP")
        if ip and self.wait_unrouted is not None:
            # Like a preStop hook every pod gets: no proxy may still send traffic here when the
            # containers receive SIGTERM, so that a rolling update drops no request.
            self.wait_unrouted(ip, UNROUTE_TIMEOUT)
        grace = int(
            meta.get("deletionGracePeriodSeconds", (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        )
        containers = self.docker.containers(kind="pod", uid=meta["uid"])
        apps = [c for c in containers if c["Labels"].get(L + "container") != INFRA]
        for c in apps:
            if c["State"] == "running":
                self.reg.events.record(
                    pod, "Killing", f"Stopping container {c['Labels'].get(L + 'container')}", component="kubelet"
                )
        with ThreadPoolExecutor(max_workers=max(len(apps), 1)) as pool:
            list(pool.map(lambda c: self.docker.stop(c["Id"], grace) if c["State"] == "running" else None, apps))
        for c in containers:
            self.docker.remove(c["Id"])
        self._remove_pod_dir(meta["uid"])
        try:
            self.store.delete(POD, meta["namespace"], meta["name"])
        except ApiError as err:
            if err.code != 404:
                raise

    # -- logs and exec (for the API server) ------------------------------------------------

    def _container_for(self, pod: dict[str, Any], container: str | None, previous: bool) -> dict[str, Any]:
        name = container or pod["spec"]["containers"][0]["name"]
        attempts = self._observed(pod["metadata"]["uid"]).get(name) or []
        index = 1 if previous else 0
        if len(attempts) <= index:
            if previous:
                raise ApiError(
                    400, f'previous terminated container "{name}" in pod "{pod["metadata"]["name"]}" not found'
                )
            raise ApiError(
                400, f'container "{name}" in pod "{pod["metadata"]["name"]}" is waiting to start: ContainerCreating'
            )
        return attempts[index]

    def logs(
        self,
        pod: dict[str, Any],
        container: str | None,
        follow: bool,
        previous: bool,
        tail: int | None,
        timestamps: bool,
    ) -> Iterator[bytes]:
        c = self._container_for(pod, container, previous)
        try:
            stream = self.docker.logs(c["Id"], follow=follow and not previous, tail=tail, timestamps=timestamps)
        except NotFound:
            raise ApiError(404, "the container is gone") from None
        yield b""
        yield from stream

    def exec_stream(
        self, pod: dict[str, Any], container: str | None, command: list[str], stdin: bool, tty: bool
    ) -> ContainerStream:
        c = self._running(pod, container)
        return self.docker.exec_stream(c["Id"], command, stdin=stdin, tty=tty)

    def attach_stream(self, pod: dict[str, Any], container: str | None, stdin: bool, tty: bool) -> ContainerStream:
        c = self._running(pod, container)
        return self.docker.attach_stream(c["Id"], stdin=stdin, tty=tty)

    def _running(self, pod: dict[str, Any], container: str | None) -> dict[str, Any]:
        c = self._container_for(pod, container, False)
        if c["State"] != "running":
            raise ApiError(400, f"container {c['Labels'].get(L + 'container')} is not running")
        return c
