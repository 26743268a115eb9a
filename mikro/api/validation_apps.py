"""Validation of StatefulSet and DaemonSet specs, with Kubernetes' wording and field paths.

Pure; called from `validation._workload` with its checker.
"""

from __future__ import annotations

import re
from typing import Any

from mikro.api.validation import FieldError, _Checker

PERCENT = re.compile(r"^\d+%$")


def _int_or_percent(c: _Checker, value: Any, path: str) -> int | None:
    """Checks an IntOrString; returns its integer (a percentage counts as its number)."""
    if value is None:
        return None
    if isinstance(value, str):
        if not PERCENT.match(value):
            c.invalid(path, value, "must be an integer or percentage (e.g '5%')")
            return None
        if int(value[:-1]) > 100:
            c.invalid(path, value, "must not be greater than 100%")
        return int(value[:-1])
    if isinstance(value, bool) or not isinstance(value, int):
        c.invalid(path, value, "must be an integer or percentage (e.g '5%')")
        return None
    if value < 0:
        c.invalid(path, value, "must be greater than or equal to 0")
    return value


def statefulset(c: _Checker, spec: dict[str, Any]) -> None:
    policy = spec.get("podManagementPolicy")
    if policy is not None and policy not in ("OrderedReady", "Parallel"):
        c.unsupported("spec.podManagementPolicy", policy, ["OrderedReady", "Parallel"])
    strategy = c.mapping(spec.get("updateStrategy"), "spec.updateStrategy")
    stype = strategy.get("type")
    if stype is not None and stype not in ("RollingUpdate", "OnDelete"):
        c.unsupported("spec.updateStrategy.type", stype, ["OnDelete", "RollingUpdate"])
    rolling = c.mapping(strategy.get("rollingUpdate"), "spec.updateStrategy.rollingUpdate")
    if stype == "OnDelete" and rolling:
        c.invalid("spec.updateStrategy.rollingUpdate", rolling, "only allowed for updateStrategy 'RollingUpdate'")
    c.integer(rolling.get("partition"), "spec.updateStrategy.rollingUpdate.partition", low=0)
    unavailable = _int_or_percent(c, rolling.get("maxUnavailable"), "spec.updateStrategy.rollingUpdate.maxUnavailable")
    if unavailable == 0:
        c.invalid(
            "spec.updateStrategy.rollingUpdate.maxUnavailable", rolling.get("maxUnavailable"), "must be greater than 0"
        )
    retention = c.mapping(spec.get("persistentVolumeClaimRetentionPolicy"), "spec.persistentVolumeClaimRetentionPolicy")
    for field in ("whenDeleted", "whenScaled"):
        value = retention.get(field)
        if value is not None and value not in ("Retain", "Delete"):
            c.unsupported(f"spec.persistentVolumeClaimRetentionPolicy.{field}", value, ["Delete", "Retain"])
    c.integer(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit", low=0)
    c.integer(spec.get("minReadySeconds"), "spec.minReadySeconds", low=0)
    ordinals = c.mapping(spec.get("ordinals"), "spec.ordinals")
    c.integer(ordinals.get("start"), "spec.ordinals.start", low=0)
    names: set[str] = set()
    for i, tpl in enumerate(c.sequence(spec.get("volumeClaimTemplates"), "spec.volumeClaimTemplates")):
        path = f"spec.volumeClaimTemplates[{i}]"
        tpl = c.mapping(tpl, path)
        name = c.mapping(tpl.get("metadata"), f"{path}.metadata").get("name")
        if not name:
            c.required(f"{path}.metadata.name")
        elif name in names:
            c.duplicate(f"{path}.metadata.name", name)
        else:
            names.add(name)
        claim = c.mapping(tpl.get("spec"), f"{path}.spec")
        modes = c.sequence(claim.get("accessModes"), f"{path}.spec.accessModes")
        if not modes:
            c.errors.append(
                FieldError(f"{path}.spec.accessModes", "Required", "Required value: at least 1 access mode is required")
            )
        for j, mode in enumerate(modes):
            if mode not in ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"):
                c.unsupported(
                    f"{path}.spec.accessModes[{j}]",
                    mode,
                    ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"],
                )
        requests = c.mapping(c.mapping(claim.get("resources"), f"{path}.spec.resources").get("requests"), "")
        if "storage" not in requests:
            c.required(f"{path}.spec.resources[storage]")
        else:
            c.quantity(requests["storage"], f"{path}.spec.resources[storage]")


def daemonset(c: _Checker, spec: dict[str, Any]) -> None:
    strategy = c.mapping(spec.get("updateStrategy"), "spec.updateStrategy")
    stype = strategy.get("type")
    if stype is not None and stype not in ("RollingUpdate", "OnDelete"):
        c.unsupported("spec.updateStrategy.type", stype, ["OnDelete", "RollingUpdate"])
    rolling = c.mapping(strategy.get("rollingUpdate"), "spec.updateStrategy.rollingUpdate")
    base = "spec.updateStrategy.rollingUpdate"
    unavailable = _int_or_percent(c, rolling.get("maxUnavailable"), f"{base}.maxUnavailable")
    surge = _int_or_percent(c, rolling.get("maxSurge"), f"{base}.maxSurge")
    if stype in (None, "RollingUpdate") and rolling and unavailable == 0 and not surge:
        c.invalid(f"{base}.maxUnavailable", rolling.get("maxUnavailable"), "may not be 0 when `maxSurge` is 0")
    c.integer(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit", low=0)
    c.integer(spec.get("minReadySeconds"), "spec.minReadySeconds", low=0)


STATEFULSET_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def update_errors(kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[FieldError]:
    """What an update may not change: a StatefulSet's spec outside its mutable fields, a
    DaemonSet's selector (Kubernetes' ValidateStatefulSetUpdate / ValidateDaemonSetUpdate)."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if kind == "StatefulSet":
        frozen_old = {k: v for k, v in old_spec.items() if k not in STATEFULSET_MUTABLE}
        frozen_new = {k: v for k, v in new_spec.items() if k not in STATEFULSET_MUTABLE}
        if frozen_old != frozen_new:
            fields = ", ".join(f"'{f}'" for f in STATEFULSET_MUTABLE[:-1])
            return [
                FieldError(
                    "spec",
                    "Forbidden",
                    f"Forbidden: updates to statefulset spec for fields other than {fields} and "
                    f"'{STATEFULSET_MUTABLE[-1]}' are forbidden",
                )
            ]
    elif kind == "DaemonSet" and old_spec.get("selector") != new_spec.get("selector"):
        return [FieldError("spec.selector", "Invalid", "Invalid value: field is immutable")]
    return []
