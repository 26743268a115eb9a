"""The kube-controller-manager part: the loop that runs every controller's pass.

Each controller is a level-triggered reconcile with `sync(api, now)` doing one pass over its
objects; it reads and writes only through `helpers.Api`. A pass runs on every change
(debounced) and every `RESYNC_SECONDS`, so a missed change is never lost. To add a
controller, add it to `default_controllers()` at the place its inputs are fresh.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Protocol

from mikro.api.registry import Registry
from mikro.api.store import Change
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
# Every change wakes the controllers; this full pass only catches what no change announced.
RESYNC_SECONDS = 10.0
# ConfigMaps and Secrets reach the controllers only through quota counts and the root CA
# publisher: a flood of them (bench/run api writes 1000 a second) wakes a pass a second, not
# one each 20 ms.
LAZY_KINDS = frozenset({"ConfigMap", "Secret"})
LAZY_SECONDS = 1.0


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
        elif kind != "Event":
            self.wake.set()
        return False

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.wake.wait(RESYNC_SECONDS if self.due is None else min(RESYNC_SECONDS, max(self.due, 0.02)))
            self.wake.clear()
            self.stop.wait(0.02)  # debounce a burst of writes into one pass
            self.sync_all()

    def sync_all(self) -> None:
        with self.lock:
            now = self.clock()
            for controller in self.controllers:
                try:
                    controller.sync(self.api, now)
                except Exception:  # noqa: BLE001 - a controller bug must not stop the others
                    log.exception("controller %s: pass failed", controller.name)
            self.due = None
            for reconciler in self.extra:
                try:
                    wait = reconciler.sync_all(self.store)
                except ApiError as err:
                    wait = 1.0  # raced with a writer: look again soon
                    if err.code not in (404, 409):
                        log.warning("%s: %s", type(reconciler).__name__, err.message)
                except Exception:  # noqa: BLE001 - a controller bug must not stop the others
                    wait = None
                    log.exception("controller %s: pass failed", type(reconciler).__name__)
                if wait is not None:
                    self.due = wait if self.due is None else min(self.due, wait)
