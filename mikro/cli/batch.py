"""Client-side generators for batch/v1, as kubectl's: `create job NAME --from=cronjob/X`."""

from __future__ import annotations

import copy
from typing import Any

from mikro.api.resources import BY_KIND
from mikro.cli.client import Client
from mikro.cli.kubectl import UsageError, resolve
from mikro.errors import ApiError

MANUAL = "cronjob.kubernetes.io/instantiate"


def job_from_cronjob(cronjob: dict[str, Any], name: str) -> dict[str, Any]:
    """The Job kubectl's generator builds: the CronJob's job template, annotated as a manual
    run and owned by the CronJob (so that it is listed, and removed, with it)."""
    template = copy.deepcopy((cronjob.get("spec") or {}).get("jobTemplate") or {})
    tmeta = template.get("metadata") or {}
    annotations = {MANUAL: "manual", **(tmeta.get("annotations") or {})}
    meta = cronjob["metadata"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "annotations": annotations,
            "labels": tmeta.get("labels") or {},
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"], "uid": meta["uid"], "controller": True}
            ],
        },
        "spec": template.get("spec") or {},
    }


def create_job(client: Client, name: str, source: str, namespace: str) -> str:
    kind, _, cj_name = source.partition("/")
    try:
        is_cronjob = bool(cj_name) and resolve(kind).kind == "CronJob"
    except UsageError:
        is_cronjob = False
    if not is_cronjob:
        raise UsageError("from must be an existing cronjob")
    try:
        cronjob = client.get(BY_KIND["CronJob"], namespace, cj_name)
    except ApiError as err:
        if err.code == 404:
            raise UsageError(f'cronjobs.batch "{cj_name}" not found') from None
        raise
    client.create(BY_KIND["Job"], namespace, job_from_cronjob(cronjob, name))
    return f"job.batch/{name} created"


def job_progress(job: dict[str, Any]) -> tuple[bool, str, str | None]:
    """`apply --wait` for a Job: (done, progress line, failure) — a Job is done once Complete,
    and a Failed one is an error with its reason."""
    name = job["metadata"]["name"]
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return True, f'job "{name}" completed', None
        if cond.get("type") == "Failed":
            return False, f'job "{name}" failed', f"{cond.get('reason')}: {cond.get('message')}"
    completions = (job.get("spec") or {}).get("completions")
    target = str(completions) if completions is not None else "1"
    return False, f'Waiting for job "{name}": {status.get("succeeded", 0)} of {target} completions...', None
