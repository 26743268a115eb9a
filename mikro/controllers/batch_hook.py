"""The controllers that live in modules of their own, as the manager runs them at the end of
each pass: Job, CronJob and the volume binder/provisioner."""

from __future__ import annotations

from typing import Any, Protocol

from mikro.controllers.cronjob import CronJobController
from mikro.controllers.cronjob import RegistryControl as CronJobControl
from mikro.controllers.job import JobController
from mikro.controllers.job import RegistryControl as JobControl


class Reconciler(Protocol):
    def sync_all(self, store: Any) -> float | None: ...  # seconds until it needs another pass


def extra_controllers(registry: Any) -> list[Reconciler]:
    return [JobController(JobControl(registry)), CronJobController(CronJobControl(registry))]
