"""The pod runtime's periodic look: one list of the containers, a sync only for the pods whose
containers changed since their last sync (no Docker: pure)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.config import LABEL_PREFIX
from mikro.node import podplan
from mikro.node.docker_backend import DockerError

POD = BY_KIND["Pod"]


def _c(ident: str, uid: str, state: str = "running") -> dict[str, Any]:
    return {"Id": ident, "State": state, "Labels": {LABEL_PREFIX + "uid": uid}, "Names": [f"/{ident}"]}


def test_the_periodic_look_syncs_only_pods_whose_containers_changed() -> None:
    seen = [_c("a1", "a"), _c("a2", "a"), _c("b1", "b"), _c("c1", "c")]
    pictures = {
        "a": podplan.picture([seen[1], seen[0]]),  # the order of the list does not matter
        "b": podplan.picture([seen[2]]),
        "c": podplan.picture([seen[3]]),
    }
    now = [_c("a1", "a"), _c("a2", "a"), _c("b1", "b", "exited"), _c("x1", "x")]  # c's container is gone
    changed, orphans = podplan.changed_pods(["a", "b", "c", "d"], now, pictures)
    assert changed == ["b", "c", "d"]  # d: no sync saw it yet
    assert [o["Id"] for o in orphans] == ["x1"]


def test_nothing_changed_nothing_synced_and_a_new_container_is_a_change() -> None:
    seen = [_c("a1", "a"), _c("a2", "a")]
    pictures = {"a": podplan.picture(seen)}
    assert podplan.changed_pods(["a"], seen, pictures) == ([], [])
    assert podplan.changed_pods(["a"], [*seen, _c("a3", "a", "created")], pictures) == (["a"], [])
    assert podplan.changed_pods(["a"], [_c("a1", "a"), _c("a2", "a", "exited")], pictures) == (["a"], [])


def test_the_runtimes_own_status_write_is_recognised_and_no_other_write_is(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    changes: list[dict[str, Any]] = []
    store.watch(lambda change: changes.append(change.obj) and False)
    pod = store.create(POD, {"metadata": {"name": "web", "namespace": "default"}, "spec": {"containers": []}})
    pod["status"] = {"phase": "Running", "podIP": "10.152.0.9"}
    expected = podplan.sans_version(pod)
    store.update(POD, pod, status_only=True)
    assert podplan.sans_version(changes[-1]) == expected  # what the runtime wrote: no new sync
    other = store.get(POD, "default", "web")
    other["metadata"]["labels"] = {"app": "web"}
    store.update(POD, other)
    assert podplan.sans_version(changes[-1]) != expected  # someone else's write: a sync


class _BusyDocker:
    """An engine that fails every list (as one that is restarting)."""

    def __init__(self) -> None:
        self.lists = 0

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        self.lists += 1
        raise DockerError("the engine is restarting")


def test_a_failed_sync_is_tried_again_backing_off(tmp_path: Path) -> None:
    from mikro.api.registry import Registry
    from mikro.node.runtime import PodRuntime

    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    docker = _BusyDocker()
    ctx = podplan.PodContext("c", "c", "mikro/pause:1", "mikro", "127.0.0.1", str(tmp_path))
    rt = PodRuntime(registry, docker, ctx)  # type: ignore[arg-type]
    pod = registry.store.create(
        POD,
        {"metadata": {"name": "web", "namespace": "default"}, "spec": {"nodeName": "mikro", "containers": []}},
    )
    uid = pod["metadata"]["uid"]
    rt.index[uid] = ("default", "web")
    before = time.monotonic()
    rt._run(uid)
    assert docker.lists == 1 and before + 10 <= rt.wakeups[uid] <= time.monotonic() + 10  # as the kubelet: 10 s
    rt.wakeups.pop(uid)
    rt._run(uid)
    assert rt.wakeups[uid] >= before + 20  # then doubling
    rt.pool.shutdown()


class _BootDocker:
    """An engine with one pod's stopped app container, whose start waits for the test."""

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.release = threading.Event()
        self.starting = threading.Event()
        self.started: list[str] = []

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        c = _c("app0", self.uid, "exited")
        c["Labels"][LABEL_PREFIX + "container"] = "app"
        return [c]

    def on_stale_network(self, container: dict[str, Any]) -> bool:
        return False

    def start(self, ident: str) -> None:
        self.starting.set()
        assert self.release.wait(10)
        self.started.append(ident)


def _runtime(tmp_path: Path, docker: Any) -> tuple[Any, str]:
    from mikro.api.registry import Registry
    from mikro.node.runtime import PodRuntime

    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    ctx = podplan.PodContext("c", "c", "mikro/pause:1", "mikro", "127.0.0.1", str(tmp_path))
    rt = PodRuntime(registry, docker, ctx)
    pod = registry.store.create(
        POD,
        {"metadata": {"name": "web", "namespace": "default"}, "spec": {"nodeName": "mikro", "containers": []}},
    )
    uid = pod["metadata"]["uid"]
    rt.index[uid] = ("default", "web")
    return rt, uid


def test_no_pod_syncs_while_boot_starts_containers_in_place(tmp_path: Path) -> None:
    """A sync during the boot would see the app container not yet started as exited and run a
    second one in the same pod (an engine restart did: the second found its port taken)."""
    docker = _BootDocker("")
    rt, uid = _runtime(tmp_path, docker)
    docker.uid = uid
    synced: list[tuple[str, list[str]]] = []
    rt.sync = lambda u: synced.append((u, list(docker.started)))
    booting = threading.Thread(target=rt.boot)
    booting.start()
    assert docker.starting.wait(10)
    rt.enqueue(uid)  # a change (a Docker event, another writer) while the container starts
    time.sleep(0.2)
    assert synced == []
    docker.release.set()
    booting.join(10)
    rt.pool.shutdown(wait=True)
    assert synced == [(uid, ["app0"])]  # once, after the container started


def test_a_status_write_that_lost_a_race_syncs_again_at_once(tmp_path: Path) -> None:
    from mikro.node.runtime import MAX_CONFLICTS_IN_A_ROW, StatusConflict

    rt, uid = _runtime(tmp_path, _BusyDocker())
    runs: list[int] = []

    def sync(u: str) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise StatusConflict(u)

    rt.sync = sync
    rt._run(uid)
    rt.pool.shutdown(wait=True)
    assert len(runs) == 2 and uid not in rt.wakeups and uid not in rt.failed  # no 10 s back-off
    # A pod refused over and over backs off as a failed sync.
    (tmp_path / "2").mkdir()
    rt2, uid2 = _runtime(tmp_path / "2", _BusyDocker())
    refused: list[int] = []

    def always(u: str) -> None:
        refused.append(1)
        raise StatusConflict(u)

    rt2.sync = always
    rt2._run(uid2)
    deadline = time.monotonic() + 10
    while uid2 not in rt2.wakeups and time.monotonic() < deadline:
        time.sleep(0.01)
    rt2.pool.shutdown(wait=True)
    assert len(refused) == MAX_CONFLICTS_IN_A_ROW + 1 and rt2.failed[uid2] == 1


class _PodDocker:
    """An engine for one pod's sync: containers kept as list entries; the infra container's
    start takes a while, as the network's set-up does on a real engine."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.made: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def _log(self, call: str, ident: str) -> None:
        with self.lock:
            self.calls.append((call, ident))

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        return [c for c in self.made.values() if all(c["Labels"].get(LABEL_PREFIX + k) == v for k, v in labels.items())]

    def image_recent(self, ref: str) -> dict[str, Any] | None:
        return {"Id": "sha256:" + ref, "Config": {}}

    def create(self, spec: Any) -> str:
        name = spec.labels.get(LABEL_PREFIX + "container", "")
        ident = f"{name}-{len(self.made)}"
        mode = spec.network_mode or spec.network
        self.made[ident] = {"Id": ident, "State": "created", "Labels": dict(spec.labels), "HostConfig": {"NetworkMode": mode}}
        self._log("create", name)
        return ident

    def start(self, ident: str) -> None:
        name = self.made[ident]["Labels"].get(LABEL_PREFIX + "container", "")
        self._log("start-begin", name)
        if name == "POD":
            time.sleep(0.2)
        self.made[ident]["State"] = "running"
        self._log("start-end", name)

    def inspect(self, ident: str) -> dict[str, Any]:
        c = self.made[ident]
        return {**c, "State": {"Running": c["State"] == "running", "Status": c["State"]}, "NetworkSettings": {
            "Networks": {"c": {"IPAddress": "10.152.0.5"}}}}

    def on_stale_network(self, container: dict[str, Any]) -> bool:
        return False


@pytest.mark.parametrize(
    ("env", "ahead"),
    [([], True), ([{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}], False)],
)
def test_a_new_pods_app_container_is_created_while_its_infra_starts(
    tmp_path: Path, env: list[dict[str, Any]], ahead: bool
) -> None:
    """The app container of a new pod is created during its infra container's start (not
    after it), unless its environment names the pod's IP; started once the infra runs."""
    docker = _PodDocker()
    rt, uid = _runtime(tmp_path, docker)
    rt.store.create(BY_KIND["Namespace"], {"metadata": {"name": "default"}})  # (where the Events go)
    pod = rt.store.get(POD, "default", "web")
    pod["spec"]["containers"] = [{"name": "app", "image": "hello-ip:1", "env": env}]
    rt.store.update(POD, pod)
    rt.sync(uid)
    rt.pool.shutdown()
    calls = docker.calls
    assert calls.index(("start-end", "POD")) < calls.index(("start-begin", "app"))
    created_app = calls.index(("create", "app"))
    assert (created_app < calls.index(("start-end", "POD"))) is ahead
    status = rt.store.get(POD, "default", "web")["status"]
    assert [cs["name"] for cs in status["containerStatuses"]] == ["app"]
    assert "running" in status["containerStatuses"][0]["state"] and status["podIP"] == "10.152.0.5"
    assert rt.reg.events.flush()  # (Events are written in the background, as upstream's)
    reasons = [e["reason"] for e in rt.store.list(BY_KIND["Event"], "default")[0]]
    assert reasons.count("Created") == 1 and reasons.count("Started") == 1


class _CrashingDocker(_PodDocker):
    """App containers exit as soon as they start (a crash within milliseconds); their events
    never arrive: only the runtime's own look can see the crash."""

    def start(self, ident: str) -> None:
        super().start(ident)
        if self.made[ident]["Labels"].get(LABEL_PREFIX + "container") != "POD":
            self.made[ident]["State"] = "exited"

    def inspect(self, ident: str) -> dict[str, Any]:
        info = super().inspect(ident)
        if self.made[ident]["State"] == "exited":
            info["State"] = {"Running": False, "Status": "exited", "ExitCode": 3, "StartedAt": "2026-01-01T00:00:00Z"}
        return info

    def remove(self, ident: str) -> None:
        self.made.pop(ident, None)


def test_a_container_that_ends_during_its_own_sync_is_restarted_without_its_event(tmp_path: Path) -> None:
    """The sync that starts a container which dies at once sees it running, then ended: the pod
    syncs again by itself (the first restart at once, then the back-off), event or not."""
    docker = _CrashingDocker()
    rt, uid = _runtime(tmp_path, docker)
    rt.store.create(BY_KIND["Namespace"], {"metadata": {"name": "default"}})
    pod = rt.store.get(POD, "default", "web")
    pod["spec"]["containers"] = [{"name": "app", "image": "hello-ip:1"}]
    rt.store.update(POD, pod)
    rt.enqueue(uid)

    def state() -> dict[str, Any]:
        statuses = (rt.store.get(POD, "default", "web").get("status") or {}).get("containerStatuses") or [{}]
        return statuses[0]

    deadline = time.monotonic() + 10
    while (state().get("state") or {}).get("waiting", {}).get("reason") != "CrashLoopBackOff":
        assert time.monotonic() < deadline, state()
        time.sleep(0.02)
    rt.pool.shutdown(wait=True)
    assert state()["restartCount"] == 1
    assert docker.calls.count(("create", "app")) == 2  # the first run, and its restart at once


class _StreamDocker(_BootDocker):
    """An engine whose event stream opens only when the test says."""

    def __init__(self, uid: str) -> None:
        super().__init__(uid)
        self.release.set()
        self.open = threading.Event()
        self.opened_before_start: bool | None = None

    def start(self, ident: str) -> None:
        if self.opened_before_start is None:
            self.opened_before_start = self.open.is_set()
        super().start(ident)

    def events(self, on_event: Any, stop: threading.Event, on_reconnect: Any, connected: threading.Event) -> None:
        time.sleep(0.2)  # (a connection that takes a while)
        self.open.set()
        connected.set()
        stop.wait(10)


def test_the_engines_events_are_followed_before_the_boot_starts_containers(tmp_path: Path) -> None:
    docker = _StreamDocker("")
    rt, uid = _runtime(tmp_path, docker)
    docker.uid = uid
    rt.sync = lambda u: None
    rt.prober.start = lambda: None
    rt._periodic = lambda: None
    rt.start()
    rt.stop_event.set()
    rt.pool.shutdown(wait=True)
    assert docker.started == ["app0"] and docker.opened_before_start is True


class _StoppingDocker:
    """Two pods' running containers; a stop takes a while (an infra container's the longest,
    as the engine tears its network down)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done: list[str] = []

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        out = []
        for uid in ("p1", "p2"):
            for name in ("POD", "app"):
                c = _c(f"{uid}-{name}", uid)
                c["Labels"][LABEL_PREFIX + "container"] = name
                out.append(c)
        return out

    def stop(self, ident: str, timeout: int) -> None:
        time.sleep(0.3 if ident.endswith("POD") else 0.05)
        with self.lock:
            self.done.append(ident)


def test_the_proxies_stop_once_the_apps_have_stopped_beside_the_infra_containers(tmp_path: Path) -> None:
    """At `mikro stop` an app may still call the API or a Service while it ends: the proxies
    stop only after every app container; the infra containers' slow stops need not wait."""
    docker = _StoppingDocker()
    rt, _ = _runtime(tmp_path, docker)
    when: list[list[str]] = []
    rt.shutdown(after_apps=lambda: when.append(list(docker.done)))
    assert len(when) == 1
    assert {"p1-app", "p2-app"} <= set(when[0])  # every app had stopped
    assert not {"p1-POD", "p2-POD"} <= set(when[0])  # not every infra container yet
    assert sorted(docker.done) == ["p1-POD", "p1-app", "p2-POD", "p2-app"]


def test_a_missing_infra_image_is_named_from_the_creates_own_answer(tmp_path: Path) -> None:
    """No image inspection before the infra container's create (one Docker round trip less per
    new pod): the create's 404 is the pod's `ContainerCreating` with what to run."""
    import docker as docker_sdk

    class _NoInfraImage(_PodDocker):
        def image_recent(self, ref: str) -> dict[str, Any] | None:
            self._log("inspect-image", ref)
            return super().image_recent(ref)

        def create(self, spec: Any) -> str:
            if spec.image == "mikro/pause:1":
                self._log("create", "POD")
                raise docker_sdk.errors.ImageNotFound("404 Client Error: No such image: mikro/pause:1")
            return super().create(spec)

    engine = _NoInfraImage()
    rt, uid = _runtime(tmp_path, engine)
    pod = rt.store.get(POD, "default", "web")
    pod["spec"]["containers"] = [{"name": "app", "image": "hello-ip:1"}]
    rt.store.update(POD, pod)
    rt.sync(uid)
    rt.pool.shutdown()
    waiting = rt.store.get(POD, "default", "web")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {
        "reason": "ContainerCreating",
        "message": "the infra image mikro/pause:1 is missing; run `mikro images prepare`",
    }
    assert ("inspect-image", "mikro/pause:1") not in engine.calls and engine.calls[0] == ("create", "POD")
