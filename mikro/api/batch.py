"""The batch/v1 group's API rules: Job and CronJob defaulting and validation, and the cron
schedule parser the validation and the CronJob controller share. Pure.

Wording follows Kubernetes (pkg/apis/batch/validation, robfig/cron v3 which the API server uses
for `spec.schedule`), so that `kubectl apply` of a bad manifest reads as it would on a cluster.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The label and annotation names Kubernetes uses for Jobs.
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MAX_PARALLELISM_INDEXED = 100_000

# robfig/cron's bounds and names (ParseStandard: minute hour dom month dow).
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("dom", 1, 31, {}),
    (
        "month",
        1,
        12,
        {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    ),
    ("dow", 0, 6, {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}),
)
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_TZ_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")


class ScheduleError(ValueError):
    """A schedule robfig/cron's ParseStandard refuses, with its message."""


def _go_atoi(text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ScheduleError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def _check_range(expr: str, low: int, high: int, names: dict[str, int]) -> None:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1

    def value(text: str) -> int:
        if text.lower() in names:
            return names[text.lower()]
        num = _go_atoi(text)
        if num < 0:
            raise ScheduleError(f"negative number ({num}) not allowed: {text}")
        return num

    if low_high[0] in ("*", "?"):
        start, end = low, high
    else:
        start = value(low_high[0])
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = value(low_high[1])
        else:
            raise ScheduleError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = value(range_and_step[1])
        if single:
            end = high
    else:
        raise ScheduleError(f"too many slashes: {expr}")
    if start < low:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise ScheduleError(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ScheduleError(f"step of range should be a positive number: {expr}")


def parse_schedule(schedule: str) -> str:
    """Check a schedule as Kubernetes does and return the five-field form croniter evaluates
    (descriptors expanded, `?` as `*`). ScheduleError carries robfig/cron's message."""
    spec = schedule.strip()
    if not spec:
        raise ScheduleError("empty spec string")
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        # The zone part is refused by the API separately; the rest must still parse.
        spec = spec.split(None, 1)[1] if " " in spec else ""
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return _DESCRIPTORS[spec]
        if spec.startswith("@every "):
            raise ScheduleError(f"@every is not supported by mikro: {spec}")
        raise ScheduleError(f"unrecognized descriptor: {spec}")
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    for text, (_, low, high, names) in zip(fields, _FIELDS, strict=True):
        for expr in [e for e in text.split(",") if e]:
            _check_range(expr, low, high, names)
    return " ".join(f.replace("?", "*") for f in fields)


def missed_times(schedule: str, tz: tzinfo, after: datetime, until: datetime, cap: int = 101) -> tuple[datetime | None, int]:
    """The latest of the schedule's times t with after < t <= until, and how many there were
    (counted up to `cap`, so that a long stop costs no more than a short one). Aware, in `tz`."""
    from croniter import CroniterBadDateError, croniter  # 0.05 s of CPU: at the first CronJob, not at boot

    expr = parse_schedule(schedule)
    count = 0
    it = croniter(expr, after.astimezone(tz))
    while count < cap:
        try:
            t = it.get_next(datetime)
        except CroniterBadDateError:
            break
        if t > until:
            break
        count += 1
    if count == 0:
        return None, 0
    try:
        # The latest time at or before `until`: a step back from just after it.
        back = croniter(expr, (until + timedelta(seconds=1)).astimezone(tz))
        latest = back.get_prev(datetime)
        while latest > until:
            latest = back.get_prev(datetime)
    except CroniterBadDateError:
        return None, 0
    return (latest if after < latest <= until else None), count


def next_time(schedule: str, tz: tzinfo, after: datetime) -> datetime | None:
    from croniter import CroniterBadDateError, croniter

    try:
        return croniter(parse_schedule(schedule), after.astimezone(tz)).get_next(datetime)
    except CroniterBadDateError:
        return None


def load_zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; ZoneInfoNotFoundError or ValueError when unknown."""
    return ZoneInfo(name)


# -- defaulting ----------------------------------------------------------------------------


def default_job_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_Job's spec part (also what a CronJob's Job gets when it is created)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []:
        if isinstance(rule, dict):
            for pattern in rule.get("onPodConditions") or []:
                if isinstance(pattern, dict):
                    pattern.setdefault("status", "True")


def default_job(job: dict[str, Any]) -> None:
    """Defaults and the generated selector (the Job's uid must be set already), as the API
    server's SetDefaults_Job and the job strategy's PrepareForCreate do."""
    meta = job.setdefault("metadata", {})
    spec = job.get("spec")
    if not isinstance(spec, dict):
        return
    default_job_spec(spec)
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    tmeta = template.setdefault("metadata", {})
    if not isinstance(tmeta, dict):
        return
    had_labels = tmeta.get("labels") is not None
    labels = tmeta.setdefault("labels", {}) if isinstance(tmeta.get("labels", {}), dict) else None
    if labels is None:
        return
    if spec.get("manualSelector") is not True:
        uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
        for key, value in ((LEGACY_JOB_NAME, name), (JOB_NAME, name), (LEGACY_CONTROLLER_UID, uid), (CONTROLLER_UID, uid)):
            labels.setdefault(key, value)
        selector = spec.setdefault("selector", {})
        if isinstance(selector, dict):
            match = selector.setdefault("matchLabels", {})
            if isinstance(match, dict):
                match.setdefault(CONTROLLER_UID, uid)
        spec.setdefault("manualSelector", False)
    # Kubernetes shares the template's label map with the Job when the Job has none.
    if had_labels and not meta.get("labels"):
        meta["labels"] = copy.deepcopy(labels)


def default_cronjob(cj: dict[str, Any]) -> None:
    spec = cj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)


# -- validation ----------------------------------------------------------------------------

Error = tuple[str, str, str]  # (field, reason, message) -> validation.FieldError


def _invalid(path: str, value: Any, why: str) -> Error:
    shown = f'"{value}"' if isinstance(value, str) else value
    return (path, "Invalid", f"Invalid value: {shown}: {why}")


def _nonnegative(spec: dict[str, Any], field: str, path: str, out: list[Error]) -> None:
    value = spec.get(field)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        out.append(_invalid(f"{path}.{field}", value, "must be an integer"))
    elif value < 0:
        out.append(_invalid(f"{path}.{field}", value, "must be greater than or equal to 0"))


def validate_job_spec(spec: dict[str, Any], path: str) -> list[Error]:
    """validateJobSpec's checks beyond the pod template (which validation.py checks)."""
    out: list[Error] = []
    for field in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        _nonnegative(spec, field, path, out)
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        out.append((f"{path}.completionMode", "Unsupported", f'Unsupported value: "{mode}": supported values: "NonIndexed", "Indexed"'))
    if mode == "Indexed":
        if spec.get("completions") is None:
            out.append((f"{path}.completions", "Required", "Required value: when completion mode is Indexed"))
        par = spec.get("parallelism")
        if isinstance(par, int) and par > MAX_PARALLELISM_INDEXED:
            out.append(
                _invalid(
                    f"{path}.parallelism",
                    par,
                    f"must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed",
                )
            )
    template = spec.get("template") if isinstance(spec.get("template"), dict) else {}
    pod = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    policy = pod.get("restartPolicy")
    if policy in (None, "", "Always"):
        out.append((f"{path}.template.spec.restartPolicy", "Required", 'Required value: valid values: "OnFailure", "Never"'))
    elif policy not in ("OnFailure", "Never"):
        out.append(
            (
                f"{path}.template.spec.restartPolicy",
                "Unsupported",
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
            )
        )
    elif spec.get("podFailurePolicy") is not None and policy != "Never":
        out.append(
            _invalid(f"{path}.template.spec.restartPolicy", policy, 'only "Never" is supported when podFailurePolicy is specified')
        )
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        names = {c.get("name") for c in (pod.get("containers") or []) + (pod.get("initContainers") or []) if isinstance(c, dict)}
        for i, rule in enumerate(pfp.get("rules") or []):
            rpath = f"{path}.podFailurePolicy.rules[{i}]"
            if not isinstance(rule, dict):
                out.append(_invalid(rpath, type(rule).__name__, "must be a mapping"))
                continue
            action = rule.get("action")
            if not action:
                out.append((f"{rpath}.action", "Required", 'Required value: valid values: ["Count" "FailIndex" "FailJob" "Ignore"]'))
            elif action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
                out.append(_invalid(f"{rpath}.action", action, "requires the backoffLimitPerIndex to be set"))
            elif action not in ("Count", "FailIndex", "FailJob", "Ignore"):
                out.append(
                    (
                        f"{rpath}.action",
                        "Unsupported",
                        f'Unsupported value: "{action}": supported values: "Count", "FailIndex", "FailJob", "Ignore"',
                    )
                )
            codes = rule.get("onExitCodes")
            conds = rule.get("onPodConditions")
            if codes is not None and conds:
                out.append((rpath, "Invalid", "Invalid value: specifying both OnExitCodes and OnPodConditions is not supported"))
            if codes is None and not conds:
                out.append((rpath, "Invalid", "Invalid value: specifying one of OnExitCodes and OnPodConditions is required"))
            if isinstance(codes, dict):
                cpath = f"{rpath}.onExitCodes"
                op = codes.get("operator")
                if not op:
                    out.append((f"{cpath}.operator", "Required", 'Required value: valid values: ["In" "NotIn"]'))
                elif op not in ("In", "NotIn"):
                    out.append((f"{cpath}.operator", "Unsupported", f'Unsupported value: "{op}": supported values: "In", "NotIn"'))
                cname = codes.get("containerName")
                if cname is not None and cname not in names:
                    out.append(_invalid(f"{cpath}.containerName", cname, "must be one of the container or initContainer names in the pod template"))
                values = codes.get("values") or []
                if not values:
                    out.append((f"{cpath}.values", "Invalid", "Invalid value: []int32(nil): at least one value is required"))
                seen: set[Any] = set()
                for j, v in enumerate(values):
                    if op == "In" and v == 0:
                        out.append(_invalid(f"{cpath}.values[{j}]", v, "must not be 0 for the In operator"))
                    if v in seen:
                        out.append((f"{cpath}.values[{j}]", "Duplicate", f"Duplicate value: {v}"))
                    seen.add(v)
                if all(isinstance(v, int) for v in values) and values != sorted(values):
                    out.append(_invalid(f"{cpath}.values", values, "must be ordered"))
    return out


def validate_job(job: dict[str, Any]) -> list[Error]:
    meta = job.get("metadata") or {}
    spec = job.get("spec") if isinstance(job.get("spec"), dict) else {}
    out = validate_job_spec(spec, "spec")
    selector = spec.get("selector")
    if not meta.get("uid"):
        # A manifest read by the CLI: the API server generates the selector when it creates it.
        if selector is None and spec.get("manualSelector") is not True:
            return out
    if not selector:
        out.append(("spec.selector", "Required", "Required value"))
    if spec.get("manualSelector") is not True and isinstance(selector, dict):
        tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        uid, name = meta.get("uid"), meta.get("name")
        for key, want in ((LEGACY_CONTROLLER_UID, uid), (LEGACY_JOB_NAME, name), (CONTROLLER_UID, uid), (JOB_NAME, name)):
            if tlabels.get(key) != want:
                out.append(
                    _invalid(f"spec.template.metadata.labels[{key}]", tlabels.get(key, ""), f"must be '{want}'")
                )
        match = selector.get("matchLabels") or {}
        if match.get(CONTROLLER_UID, uid) != uid:
            out.append(("spec.selector", "Invalid", "Invalid value: `selector` not auto-generated"))
    mode = spec.get("completionMode")
    completions = spec.get("completions")
    if mode == "Indexed" and isinstance(completions, int) and completions > 0 and meta.get("name"):
        host = f"{meta['name']}-{completions - 1}"
        if len(host) > 63 or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", host):
            out.append(_invalid("metadata.name", meta["name"], f"will not able to create pod with invalid DNS label: {host}"))
    return out


def validate_job_update(new: dict[str, Any], old: dict[str, Any]) -> list[Error]:
    out: list[Error] = []
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    for field in ("completions", "selector", "template", "completionMode", "podFailurePolicy"):
        if spec.get(field) != old_spec.get(field):
            out.append((f"spec.{field}", "Invalid", "Invalid value: field is immutable"))
    return out


def validate_cronjob(cj: dict[str, Any], old: dict[str, Any] | None = None) -> list[Error]:
    out: list[Error] = []
    meta = cj.get("metadata") or {}
    spec = cj.get("spec") if isinstance(cj.get("spec"), dict) else {}
    schedule = spec.get("schedule")
    if not schedule:
        out.append(("spec.schedule", "Required", "Required value"))
    elif not isinstance(schedule, str):
        out.append(_invalid("spec.schedule", schedule, "must be a string"))
    else:
        try:
            parse_schedule(schedule)
        except ScheduleError as exc:
            out.append(_invalid("spec.schedule", schedule, str(exc)))
        old_schedule = ((old or {}).get("spec") or {}).get("schedule") or ""
        if "TZ" in schedule and "TZ" not in old_schedule:
            out.append(_invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    _nonnegative(spec, "startingDeadlineSeconds", "spec", out)
    _nonnegative(spec, "successfulJobsHistoryLimit", "spec", out)
    _nonnegative(spec, "failedJobsHistoryLimit", "spec", out)
    tz = spec.get("timeZone")
    old_tz = ((old or {}).get("spec") or {}).get("timeZone")
    if tz is not None and (old is None or tz != old_tz):
        out.extend(_validate_zone(tz))
    policy = spec.get("concurrencyPolicy")
    if policy is not None and policy not in ("Allow", "Forbid", "Replace"):
        out.append(
            (
                "spec.concurrencyPolicy",
                "Unsupported",
                f'Unsupported value: "{policy}": supported values: "Allow", "Forbid", "Replace"',
            )
        )
    template = spec.get("jobTemplate") if isinstance(spec.get("jobTemplate"), dict) else {}
    jspec = template.get("spec") if isinstance(template.get("spec"), dict) else {}
    out.extend(validate_job_spec(jspec, "spec.jobTemplate.spec"))
    if jspec.get("selector") is not None:
        out.append(("spec.jobTemplate.spec.selector", "Invalid", "Invalid value: `selector` will be auto-generated"))
    if jspec.get("manualSelector") is True:
        out.append(("spec.jobTemplate.spec.manualSelector", "Unsupported", 'Unsupported value: true: supported values: "nil", "false"'))
    name = meta.get("name")
    if old is None and isinstance(name, str) and len(name) > 52:
        out.append(_invalid("metadata.name", name, "must be no more than 52 characters"))
    return out


def _validate_zone(tz: Any) -> list[Error]:
    if not isinstance(tz, str) or not tz:
        return [_invalid("spec.timeZone", tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            return [_invalid("spec.timeZone", tz, f"unknown time zone {tz}")]
    if tz.lower() == "local":
        return [_invalid("spec.timeZone", tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")]
    try:
        load_zone(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return [_invalid("spec.timeZone", tz, f"unknown time zone {tz}")]
    return []
