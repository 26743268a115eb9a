"""The kube-controller-manager part: the loop that runs every controller's pass.

Each controller is a level-triggered reconcile with `sync(api, now)` doing one pass over its
objects; it reads and writes only through `helpers.Api`. A pass runs on every change
(debounced); without changes, only when the clock alone moves an answer (`idle.py`, and the
Job/CronJob/volume passes' own answers), soon after a pass in which a write failed, and every
`RESYNC_SECONDS` as a safety net. To add a controller, add it to `default_controllers()` at
the place its inputs are fresh; if its answer moves with time alone, say when in `idle.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Protocol

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import Change
from mikro.controllers import helpers, idle
from mikro.controllers.batch_hook import Reconciler, extra_controllers
from mikro.controllers.crdfinalizer import CRDFinalizerController
from mikro.controllers.daemonset import DaemonSetController
from mikro.controllers.deployment import DeploymentController, DeploymentStatusController
from mikro.controllers.endpoints import EndpointsController, EndpointsFastPath
from mikro.controllers.garbagecollector import GarbageCollector
from mikro.controllers.helpers import Api, Clock, ClusterApi, utc_now
from mikro.controllers.namespace import NamespaceController
from mikro.controllers.policy import policy_controllers
from mikro.controllers.replicaset import ReplicaSetController, ReplicationControllerController
from mikro.controllers.statefulset import StatefulSetController
from mikro.errors import ApiError

log = logging.getLogger("mikro.controllers")
# Every change wakes the controllers; an idle cluster needs no pass. This one is a safety net
# (as Kubernetes' informers resync, rarely): a pass every 10 s decoded every Pod, ReplicaSet
# and Deployment some ten times, 2-3% of a CPU with 200 idle pods.
RESYNC_SECONDS = 300.0
# After a pass in which a write failed (not a race: the winner's write wakes the next pass).
RETRY_SECONDS = 10.0
# ConfigMaps and Secrets reach the controllers only through quota counts and the root CA
# publisher: a flood of them (bench/run api writes 1000 a second) wakes a pass a second, not
# one each 20 ms.
LAZY_KINDS = frozenset({"ConfigMap", "Secret"})
LAZY_SECONDS = 1.0
# A burst of writes (an apply of many objects, pods starting) is gathered into one pass by
# waiting this long after a wake; a change after a quiet spell (a scale, a small apply) is
# acted on at once: the wait is only for wakes within QUIET_SECONDS of the last pass's end.
DEBOUNCE_SECONDS = 0.02
QUIET_SECONDS = 0.25


class Controller(Protocol):
    name: str

    def sync(self, api: Api, now: datetime) -> None: ...


def default_controllers() -> list[Controller]:
    """Every controller, in the order of one pass."""
    return [
        NamespaceController(),
        GarbageCollector(),
        DeploymentController(),
        ReplicaSetController(),
        ReplicationControllerController(),
        DeploymentStatusController(),  # after ReplicaSets: reports what they just counted
        StatefulSetController(),
        DaemonSetController(),
        EndpointsController(),  # sees every pod written in this pass
        *policy_controllers(),  # after Endpoints: slices mirror them; quota and PDBs count pods
        CRDFinalizerController(),
    ]


class Controllers:
    def __init__(
        self,
        registry: Registry,
        clock: Clock = utc_now,
        controllers: list[Controller] | None = None,
        api: Api | None = None,
        extra: list[Reconciler] | None = None,
    ) -> None:
        self.reg = registry
        self.store = registry.store
        self.api: Api = api or ClusterApi(registry)
        self.clock = clock
        self.controllers = controllers if controllers is not None else default_controllers()
        # Job, CronJob and volumes: each pass over their own objects answers when it needs the next
        # (a back-off, a deadline, a schedule), and the loop wakes by then.
        self.extra = extra if extra is not None else extra_controllers(registry)
        self.due: float | None = None
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.lazy = threading.Lock()  # held while a lazy wake is on its way

    def start(self) -> None:
        self.store.watch(self._on_change)
        EndpointsFastPath(self.store, self.api, self.lock, self.clock, self.stop).start()
        # One pass at once, as informers' first list reconciles every object: what was written
        # before this watch (a reboot's pod statuses, written by the runtime's boot) announces
        # itself by no change, and the next look would be the safety net's, minutes away.
        self.wake.set()
        self.thread = threading.Thread(target=self._loop, name="controllers", daemon=True)
        self.thread.start()

    def _on_change(self, change: Change) -> bool:
        """The store's change feed: wakes the loop (ConfigMap and Secret floods once a second
        later), and never queues the change (answering True would keep every change unread)."""
        kind = change.resource.kind
        if kind in LAZY_KINDS:
            if self.lazy.acquire(blocking=False):
                timer = threading.Timer(LAZY_SECONDS, lambda: (self.lazy.release(), self.wake.set()))
                timer.daemon = True
                timer.start()
        elif kind != "Event" or change.type == "DELETED":
            # (a terminating namespace waits for its last Events to go)
            self.wake.set()
        return False

    def _loop(self) -> None:
        last_pass = float("-inf")
        while not self.stop.is_set():
            self.wake.wait(RESYNC_SECONDS if self.due is None else min(RESYNC_SECONDS, max(self.due, 0.02)))
            self.wake.clear()
            if time.monotonic() - last_pass < QUIET_SECONDS:
                self.stop.wait(DEBOUNCE_SECONDS)
            self.sync_all()
            last_pass = time.monotonic()

    def sync_all(self) -> None:
        with self.lock:
            now = self.clock()
            failures, failed = helpers.failures.count, False
            for controller in self.controllers:
                try:
                    controller.sync(self.api, now)
                except Exception:  # noqa: BLE001 - a controller bug must not stop the others
                    failed = True
                    log.exception("controller %s: pass failed", controller.name)
            self.due = RETRY_SECONDS if failed or helpers.failures.count != failures else None
            try:
                wait = self._until_available(now)
            except ApiError:
                wait = RETRY_SECONDS
            if wait is not None:
                self.due = wait if self.due is None else min(self.due, wait)
            for reconciler in self.extra:
                try:
                    wait = reconciler.sync_all(self.store)
                except ApiError as err:
                    wait = 1.0  # raced with a writer: look again soon
                    if err.code not in (404, 409):
                        log.warning("%s: %s", type(reconciler).__name__, err.message)
                except Exception:  # noqa: BLE001 - a controller bug must not stop the others
                    wait = RETRY_SECONDS
                    log.exception("controller %s: pass failed", type(reconciler).__name__)
                if wait is not None:
                    self.due = wait if self.due is None else min(self.due, wait)

    def _until_available(self, now: datetime) -> float | None:
        """Seconds until a pod of a set with minReadySeconds becomes available (idle.py)."""
        min_ready = idle.min_ready_of([o for kind in idle.MIN_READY_KINDS for o in self.api.list(BY_KIND[kind])])
        return idle.until_available(self.api.list(BY_KIND["Pod"]), min_ready, now) if min_ready else None
