"""The controllers that live in modules of their own, as the manager runs them at the end of
each pass: Job, CronJob and the volume binder/provisioner."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from mikro.controllers.cronjob import CronJobController
from mikro.controllers.cronjob import RegistryControl as CronJobControl
from mikro.controllers.job import JobController
from mikro.controllers.job import RegistryControl as JobControl
from mikro.controllers.volume import VolumeController


class Reconciler(Protocol):
    def sync_all(self, store: Any) -> float | None: ...  # seconds until it needs another pass


def extra_controllers(registry: Any) -> list[Reconciler]:
    volumes = Path(registry.store.path).parent / "volumes"  # the state directory's, beside store.db
    return [
        VolumeController(registry, volumes),
        JobController(JobControl(registry)),
        CronJobController(CronJobControl(registry)),
    ]
