"""Events written in the background, in the order they were recorded, as client-go's
EventBroadcaster does for the kubelet: a pod's sync does not wait for an Event's durable write.

Three such writes stood between a new pod and its answering (Scheduled before its containers
are created, Created, Started before the status that makes it Ready), each a read and a
durable write of the store: 5-20 ms apiece while the control plane is busy. As upstream's
broadcaster, the queue is bounded (1000): past that an Event is dropped, with a warning,
rather than hold the recorder's callers.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mikro.events")

QUEUE_LIMIT = 1000  # client-go's maxQueuedEvents

Record = Callable[[dict[str, Any], str, str, str, str], None]


def involved(obj: dict[str, Any]) -> dict[str, Any]:
    """What an Event names of its object, copied now: the caller goes on changing its object
    (a status write gives it a new resourceVersion) while the Event waits."""
    meta = obj.get("metadata") or {}
    return {
        "kind": obj.get("kind"),
        "apiVersion": obj.get("apiVersion"),
        "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")},
    }


class EventRecorder:
    def __init__(self, record: Record, limit: int = QUEUE_LIMIT) -> None:
        self._record = record
        self._queue: queue.Queue[tuple[dict[str, Any], str, str, str, str]] = queue.Queue(maxsize=limit)
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._dropped = 0

    def record(
        self, obj: dict[str, Any], reason: str, message: str, type_: str = "Normal", component: str = "mikro"
    ) -> None:
        """Queue the Event (Registry.record_event's arguments) and return at once."""
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="events", daemon=True)
                    self._thread.start()
        try:
            self._queue.put_nowait((involved(obj), reason, message, type_, component))
        except queue.Full:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log.warning("event queue full: %d events dropped (latest: %s %s)", self._dropped, reason, message)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every Event queued so far is written (False after `timeout`): Queue.join
        with a timeout, on the condition join itself waits on."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self._record(*item)
            except Exception:  # noqa: BLE001 - an Event is worth a log line, never the recorder
                log.exception("recording an event failed")
            finally:
                self._queue.task_done()
