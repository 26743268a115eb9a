"""Events written in the background (as client-go's broadcaster): the caller does not wait for
the write, the writes keep the order of the calls, the object is read at the call, the queue is
bounded, and `flush` waits for what was queued. Then the registry's own Events through it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mikro.api import eventrecorder
from mikro.api.eventrecorder import EventRecorder
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.controlplane import bootstrap


def test_the_caller_does_not_wait_and_the_order_is_kept() -> None:
    written: list[tuple[str, str | None]] = []
    gate = threading.Event()

    def slow(obj: dict[str, Any], reason: str, message: str, type_: str, component: str) -> None:
        gate.wait(5)
        written.append((reason, obj["metadata"]["resourceVersion"]))

    recorder = EventRecorder(slow)
    pod = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7"}}
    started = time.monotonic()
    for reason in ("Scheduled", "Created", "Started"):
        recorder.record(pod, reason, "m", component="kubelet")
        pod["metadata"]["resourceVersion"] = str(int(pod["metadata"]["resourceVersion"]) + 1)  # the caller goes on
    assert time.monotonic() - started < 1 and written == []
    assert not recorder.flush(timeout=0.05)  # still held
    gate.set()
    assert recorder.flush()
    assert written == [("Scheduled", "7"), ("Created", "8"), ("Started", "9")]


def test_a_full_queue_drops_with_a_warning_and_a_failing_write_does_not_stop_it(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    written: list[str] = []

    def record(obj: dict[str, Any], reason: str, message: str, type_: str, component: str) -> None:
        gate.wait(5)
        if reason == "bad":
            raise RuntimeError("the store said no")
        written.append(reason)

    recorder = EventRecorder(record, limit=2)
    recorder.record({}, "bad", "")
    time.sleep(0.05)  # (the recorder holds "bad"; two more fit in the queue)
    for reason in ("one", "two", "three"):
        recorder.record({}, reason, "")
    assert "event queue full: 1 events dropped (latest: three " in caplog.text
    gate.set()
    assert recorder.flush()
    assert written == ["one", "two"] and "recording an event failed" in caplog.text
    assert eventrecorder.QUEUE_LIMIT == 1000  # client-go's maxQueuedEvents


def test_the_registrys_events_are_counted_as_before(tmp_path: Path) -> None:
    reg = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(reg, "mikro", "mikro", "10.152.0.1")
    pod = reg.store.create(BY_KIND["Pod"], {"metadata": {"name": "web", "namespace": "default"}, "spec": {"containers": []}})
    for _ in range(3):
        reg.events.record(pod, "BackOff", "Back-off restarting failed container", "Warning", "kubelet")
    reg.events.record(pod, "Started", "Started container web", component="kubelet")
    assert reg.events.flush()
    events = {e["reason"]: e for e in reg.store.list(BY_KIND["Event"], "default")[0]}
    assert events["BackOff"]["count"] == 3 and events["Started"]["count"] == 1
    assert events["Started"]["involvedObject"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "web",
        "uid": pod["metadata"]["uid"],
        "apiVersion": "v1",
        "resourceVersion": pod["metadata"]["resourceVersion"],
    }
    assert events["Started"]["source"] == {"component": "kubelet", "host": "mikro"}
