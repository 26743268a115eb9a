"""The head start of `mikro start`: which stopped containers are started again, in which order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from mikro.config import LABEL_PREFIX as L
from mikro.node import prestart


def entry(ident: str, kind: str, state: str = "running", container: str | None = None) -> dict[str, object]:
    labels = {L + "kind": kind}
    if container is not None:
        labels[L + "container"] = container
    return {"Id": ident * 64, "State": state, "Labels": labels}


def test_the_plan_starts_what_others_join_first_and_only_what_ran() -> None:
    containers = [
        entry("a", "pod", container="POD"),
        entry("b", "pod", container="web"),
        entry("c", "proxy"),
        entry("d", "ingress"),
        entry("e", "pod", state="exited", container="job"),  # ended before the stop: stays ended
        entry("f", "controlplane"),
        entry("0", "dashboard"),
    ]
    assert prestart.plan(containers, L) == {"first": ["a" * 64, "c" * 64, "d" * 64], "then": ["b" * 64]}


def test_the_record_is_read_once(tmp_path: Path) -> None:
    waves = {"first": ["a" * 64], "then": ["b" * 64]}
    prestart.record(tmp_path, waves)
    assert prestart.take(tmp_path) == waves
    assert prestart.take(tmp_path) == {"first": [], "then": []}


def test_a_record_that_is_not_one_starts_nothing(tmp_path: Path) -> None:
    (tmp_path / prestart.RECORD).write_text('{"first": ["../../etc", "' + "a" * 64 + '", 3], "then": "x"}')
    assert prestart.take(tmp_path) == {"first": ["a" * 64], "then": []}
    (tmp_path / prestart.RECORD).write_text("not json")
    assert prestart.take(tmp_path) == {"first": [], "then": []}
    assert prestart.begin(tmp_path, only_if_recorded=True) is None


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
