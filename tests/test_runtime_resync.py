"""The pod runtime's periodic look: one list of the containers, a sync only for the pods whose
containers changed since their last sync (no Docker: pure)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

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
