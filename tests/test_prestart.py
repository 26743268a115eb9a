"""The head start of `mikro start`: which stopped containers are started again, in which order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mikro.config import LABEL_PREFIX as L
from mikro.node import prestart

EMPTY = {"first": [], "then": [], "after": {}}


def entry(
    ident: str, kind: str, state: str = "running", container: str | None = None, uid: str = ""
) -> dict[str, object]:
    labels = {L + "kind": kind}
    if container is not None:
        labels[L + "container"] = container
        labels[L + "uid"] = uid
    return {"Id": ident * 64, "State": state, "Labels": labels}


def test_the_plan_starts_what_others_join_first_and_only_what_ran() -> None:
    containers = [
        entry("a", "pod", container="POD", uid="p1"),
        entry("b", "pod", container="web", uid="p1"),
        entry("c", "proxy"),
        entry("d", "ingress"),
        entry("e", "pod", state="exited", container="job", uid="p2"),  # ended before the stop: stays ended
        entry("f", "controlplane"),
        entry("0", "dashboard"),
        entry("1", "pod", container="side", uid="p3"),  # its infra did not run: no chain
    ]
    assert prestart.plan(containers, L) == {
        "first": ["a" * 64, "c" * 64, "d" * 64],
        "then": ["b" * 64, "1" * 64],
        "after": {"a" * 64: ["b" * 64]},
    }


def test_the_record_is_read_once(tmp_path: Path) -> None:
    waves = {"first": ["a" * 64], "then": ["b" * 64], "after": {"a" * 64: ["b" * 64]}}
    prestart.record(tmp_path, waves)
    assert prestart.take(tmp_path) == waves
    assert prestart.take(tmp_path) == EMPTY


def test_a_record_that_is_not_one_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / prestart.RECORD).write_text(
        '{"first": ["../../etc", "' + "a" * 64 + '", 3], "then": "x", "after": {"../x": ["' + "b" * 64 + '"], "'
        + "a" * 64 + '": "' + "c" * 64 + '"}}'
    )
    assert prestart.take(tmp_path) == {"first": ["a" * 64], "then": [], "after": {}}
    (tmp_path / prestart.RECORD).write_text("not json")
    assert prestart.take(tmp_path) == EMPTY
    assert prestart.begin(tmp_path, only_if_recorded=True) is None
    # a record of an older mikro (no `after`) is read as before
    prestart.record(tmp_path, {"first": ["a" * 64], "then": ["b" * 64]})
    assert prestart.take(tmp_path) == {"first": ["a" * 64], "then": ["b" * 64], "after": {}}


def test_the_second_wave_starts_after_the_whole_first() -> None:
    started: list[str] = []
    lock = threading.Lock()

    def start(ident: str) -> bool:
        with lock:
            started.append(ident)
        return True

    waves = {"first": [f"i{n}" for n in range(20)], "then": [f"a{n}" for n in range(20)]}
    prestart.run(waves, start)
    assert sorted(started[:20]) == sorted(waves["first"]) and sorted(started[20:]) == sorted(waves["then"])


def test_a_pods_containers_start_once_its_own_infra_runs_not_after_every_other() -> None:
    """The slowest of the first wave (a proxy here) holds no pod back; a pod whose infra
    container did not start gets no start of its other containers (they could not join it)."""
    started: list[str] = []
    lock = threading.Lock()
    proxy_may_finish = threading.Event()

    def start(ident: str) -> bool:
        if ident == "proxy":
            assert proxy_may_finish.wait(5)
        with lock:
            started.append(ident)
            if ident == "app1":
                proxy_may_finish.set()  # app1 started while the proxy was still starting
        return ident != "infra2"

    waves = {
        "first": ["proxy", "infra1", "infra2"],
        "then": ["app1", "app2", "loose"],
        "after": {"infra1": ["app1"], "infra2": ["app2"]},
    }
    prestart.run(waves, start)
    assert started.index("infra1") < started.index("app1") < started.index("proxy") < started.index("loose")
    assert "app2" not in started and sorted(started) == ["app1", "infra1", "infra2", "loose", "proxy"]


def test_the_command_and_the_control_plane_start_each_container_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mikro start` begins (it finds the record) while the control plane's own begin waits
    for the lock, then finds the record taken: each container is started once."""
    calls: list[tuple[str, str]] = []
    gate = threading.Event()

    def start(sock: str, ident: str) -> bool:
        gate.wait(5)  # hold the first starter inside its run
        calls.append((threading.current_thread().name, ident))
        return True

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    monkeypatch.setattr(prestart, "start_container", start)
    waves = {"first": ["a" * 64, "b" * 64], "then": ["c" * 64]}
    prestart.record(tmp_path, waves)
    command = prestart.begin(tmp_path, only_if_recorded=True)
    assert command is not None
    command.name = "command"
    while (tmp_path / prestart.RECORD).exists():  # taken under the lock
        time.sleep(0.01)
    control_plane = prestart.begin(tmp_path)
    assert control_plane is not None
    control_plane.name = "control-plane"
    gate.set()
    command.join(5)
    control_plane.join(5)
    assert sorted(ident for _, ident in calls) == sorted(waves["first"] + waves["then"])
    assert prestart.begin(tmp_path, only_if_recorded=True) is None  # nothing recorded any more
