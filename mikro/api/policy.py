"""Admission for the policy kinds, as kube-apiserver's plugins do it: LimitRanger (container
defaults, then min/max), ResourceQuota (counts and compute sums, refused with upstream's message),
LimitRange/PodDisruptionBudget defaulting, and the `Warning`s for what mikro stores but does not
enforce. Pure: the caller passes the namespace's objects in.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

from mikro.api import fieldvalidation, resources
from mikro.api.validation import parse_quantity
from mikro.errors import ApiError

Obj = dict[str, Any]

NETWORK_POLICY_WARNING = (
    "mikro stores NetworkPolicy but does not enforce it: pod traffic is not isolated"
)
RBAC_WARNING = (
    "mikro enforces RBAC for ServiceAccount tokens only: the admin user from `mikro config` may do everything"
)

# The object counts a quota may name, by the plural they count (`count/<plural>` is the same).
COUNTED = ("pods", "services", "configmaps", "secrets", "persistentvolumeclaims", "replicationcontrollers",
           "resourcequotas")
COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "cpu", "memory")
TERMINAL = ("Succeeded", "Failed")


def warnings_for(kind: str) -> None:
    """Record the warning a kind's writes carry (sent as `Warning: 299 - "..."`)."""
    if kind == "NetworkPolicy":
        fieldvalidation.warn(NETWORK_POLICY_WARNING)
    elif kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
        fieldvalidation.warn(RBAC_WARNING)


# -- quantities ------------------------------------------------------------------------------


def _q(value: Any) -> float:
    try:
        return parse_quantity(value)
    except ValueError:
        return 0.0


def format_quantity(name: str, value: float) -> str:
    """A sum as Kubernetes prints it: cpu in cores or millicores, memory in binary units."""
    if name.endswith("cpu") or name == "cpu":
        millis = round(value * 1000)
        return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
    if name.endswith("memory") or name == "memory" or name.endswith("storage"):
        whole = round(value)
        for suffix, size in (("Ei", 1 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30),
                             ("Mi", 1 << 20), ("Ki", 1 << 10)):
            if whole and whole % size == 0:
                return f"{whole // size}{suffix}"
        return str(whole)
    return str(int(value)) if float(value).is_integer() else str(value)


# -- LimitRange ------------------------------------------------------------------------------


def default_limit_range(obj: Obj) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default from max, defaultRequest from
    default, then from min."""
    for item in (obj.get("spec") or {}).get("limits") or []:
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        default = item.setdefault("default", {})
        request = item.setdefault("defaultRequest", {})
        for key, value in (item.get("max") or {}).items():
            default.setdefault(key, value)
        for key, value in default.items():
            request.setdefault(key, value)
        for key, value in (item.get("min") or {}).items():
            request.setdefault(key, value)
        if not default:
            item.pop("default")
        if not request:
            item.pop("defaultRequest")


def _containers(pod: Obj) -> list[Obj]:
    spec = pod.get("spec") or {}
    return [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) if isinstance(c, dict)]


def apply_limit_ranges(pod: Obj, ranges: list[Obj]) -> None:
    """LimitRanger for a new pod: defaults the containers' requests/limits, then refuses a
    container outside min/max with upstream's message (403)."""
    items = [i for r in ranges for i in (r.get("spec") or {}).get("limits") or []
             if isinstance(i, dict) and i.get("type") == "Container"]
    for ctr in _containers(pod):
        res = ctr.get("resources")
        if not isinstance(res, dict):
            res = ctr["resources"] = {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        for item in items:
            for key, value in (item.get("default") or {}).items():
                limits.setdefault(key, value)
            for key, value in (item.get("defaultRequest") or {}).items():
                if key not in requests and key not in (res.get("limits") or {}):
                    requests[key] = value
        for key, value in limits.items():
            requests.setdefault(key, value)  # the pod default: a request is its limit
        if limits:
            res["limits"] = limits
        if requests:
            res["requests"] = requests
    errors: list[str] = []
    for item in items:
        for ctr in _containers(pod):
            res = ctr.get("resources") or {}
            limits, requests = res.get("limits") or {}, res.get("requests") or {}
            for key, low in (item.get("min") or {}).items():
                if key not in requests:
                    errors.append(f"minimum {key} usage per Container is {low}.  No request is specified")
                elif _q(requests[key]) < _q(low):
                    errors.append(f"minimum {key} usage per Container is {low}, but request is {requests[key]}")
            for key, high in (item.get("max") or {}).items():
                if key not in limits:
                    errors.append(f"maximum {key} usage per Container is {high}.  No limit is specified")
                elif _q(limits[key]) > _q(high):
                    errors.append(f"maximum {key} usage per Container is {high}, but limit is {limits[key]}")
    if errors:
        name = (pod.get("metadata") or {}).get("name", "")
        text = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        raise ApiError(403, f'pods "{name}" is forbidden: {text}', details={"name": name, "kind": "pods"})


# -- ResourceQuota ---------------------------------------------------------------------------


def _counted(resource: str) -> str | None:
    """The plural a quota resource name counts (`pods`, `count/pods`, `count/deployments.apps`)."""
    if resource.startswith("count/"):
        return resource[len("count/"):]
    return resource if resource in COUNTED else None


def _plural_key(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def pod_compute(pod: Obj) -> dict[str, float]:
    """A pod's requests/limits sums (the larger of the containers' sum and any init container)."""
    out: dict[str, float] = {}
    spec = pod.get("spec") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            total = sum(_q(((c.get("resources") or {}).get(kind) or {}).get(resource, 0))
                        for c in spec.get("containers") or [] if isinstance(c, dict))
            init = max((_q(((c.get("resources") or {}).get(kind) or {}).get(resource, 0))
                        for c in spec.get("initContainers") or [] if isinstance(c, dict)), default=0.0)
            out[f"{kind}.{resource}"] = max(total, init)
    out["cpu"], out["memory"] = out["requests.cpu"], out["requests.memory"]
    return out


def pod_counts(pod: Obj) -> bool:
    """Whether a pod uses quota: not finished, not being deleted."""
    return (pod.get("status") or {}).get("phase") not in TERMINAL and not (pod.get("metadata") or {}).get(
        "deletionTimestamp"
    )


def usage(hard: dict[str, Any], objects: dict[str, list[Obj]]) -> dict[str, float]:
    """What a namespace uses of each resource `hard` names; `objects` maps `plural[.group]` to the
    namespace's objects of that kind."""
    used: dict[str, float] = {}
    pods = [p for p in objects.get("pods", []) if pod_counts(p)]
    for resource in hard:
        counted = _counted(resource)
        if counted == "pods":
            used[resource] = float(len(pods))
        elif counted is not None:
            used[resource] = float(len(objects.get(counted, [])))
        elif resource in COMPUTE:
            used[resource] = sum(pod_compute(p)[resource] for p in pods)
        elif resource == "requests.storage":
            used[resource] = sum(
                _q((((c.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", 0))
                for c in objects.get("persistentvolumeclaims", [])
            )
    return used


def requested_by(obj: Obj, plural_key: str, hard: dict[str, Any]) -> dict[str, float]:
    """What creating `obj` (of kind `plural_key`) adds to each resource `hard` names."""
    out: dict[str, float] = {}
    for resource in hard:
        if _counted(resource) == plural_key:
            out[resource] = 1.0
        elif plural_key == "pods" and resource in COMPUTE:
            out[resource] = pod_compute(obj)[resource]
        elif plural_key == "persistentvolumeclaims" and resource == "requests.storage":
            requests = ((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}
            out[resource] = _q(requests.get("storage", 0))
    return out


def _missing_compute(obj: Obj, hard: dict[str, Any]) -> list[str]:
    """`must specify limits.cpu for: web; ...` parts, for a pod that leaves a tracked resource out."""
    parts = []
    for resource in sorted(r for r in hard if r in COMPUTE):
        kind, _, what = resource.rpartition(".")
        kind = kind or "requests"
        missing = [c.get("name", "") for c in _containers(obj)
                   if what not in (((c.get("resources") or {}).get(kind)) or {})]
        if missing:
            parts.append(f"{resource} for: {','.join(missing)}")
    return parts


def check_quota(obj: Obj, plural: str, group: str, quotas: list[Obj], objects: dict[str, list[Obj]]) -> None:
    """The ResourceQuota admission for a create: 403 with upstream's message when a quota would be
    exceeded (`exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`)."""
    key = _plural_key(plural, group)
    name = (obj.get("metadata") or {}).get("name", "")
    qualified = key
    for quota in sorted(quotas, key=lambda q: q["metadata"]["name"]):
        hard = (quota.get("spec") or {}).get("hard") or {}
        requested = {r: v for r, v in requested_by(obj, key, hard).items()}
        if not requested:
            continue
        if key == "pods":
            missing = _missing_compute(obj, hard)
            if missing:
                raise ApiError(
                    403,
                    f'{qualified} "{name}" is forbidden: failed quota: {quota["metadata"]["name"]}: '
                    f"must specify {'; '.join(missing)}",
                    details={"name": name, "kind": plural},
                )
        used = usage(hard, objects)
        over = sorted(r for r, v in requested.items() if v and used.get(r, 0) + v > _q(hard[r]) + 1e-9)
        if over:
            def show(values: dict[str, float], names: list[str] = over) -> str:
                return ",".join(f"{r}={format_quantity(r, values.get(r, 0))}" for r in names)

            limited = ",".join(f"{r}={hard[r]}" for r in over)
            raise ApiError(
                403,
                f'{qualified} "{name}" is forbidden: exceeded quota: {quota["metadata"]["name"]}, '
                f"requested: {show(requested)}, used: {show(used)}, limited: {limited}",
                details={"name": name, "kind": plural},
            )


def quota_status(quota: Obj, objects: dict[str, list[Obj]]) -> Obj:
    """`status` of a ResourceQuota: `hard` as asked, `used` as counted now."""
    hard = copy.deepcopy((quota.get("spec") or {}).get("hard") or {})
    used = usage(hard, objects)
    return {"hard": hard, "used": {r: format_quantity(r, used.get(r, 0.0)) for r in hard}}


# -- PodDisruptionBudget ---------------------------------------------------------------------


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = float(value[:-1])
        except ValueError:
            return 0
        raw = pct * total / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def pdb_status(pdb: Obj, healthy: int, expected: int, generation: int) -> Obj:
    """The disruption controller's arithmetic: desiredHealthy from minAvailable (rounded up) or
    maxUnavailable (expected minus it, rounded up), disruptionsAllowed = current - desired."""
    spec = pdb.get("spec") or {}
    if spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, True))
    elif spec.get("minAvailable") is not None:
        desired = _scaled(spec["minAvailable"], expected, True)
    else:
        desired = expected
    allowed = max(0, healthy - desired)
    return {
        "observedGeneration": generation,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "disruptionsAllowed": allowed,
        "expectedPods": expected,
        "conditions": [
            {
                "type": "DisruptionAllowed",
                "status": "True" if allowed > 0 else "False",
                "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                "message": "",
                "observedGeneration": generation,
            }
        ],
    }


# -- the hook --------------------------------------------------------------------------------


def admit(res: resources.Resource, obj: Obj, old: Obj | None, list_ns: Callable[[resources.Resource], list[Obj]]) -> None:
    """Everything above for one write; `list_ns(resource)` lists the object's namespace."""
    warnings_for(res.kind)
    if old is not None:
        return
    if res.kind == "LimitRange":
        default_limit_range(obj)
    if not res.namespaced:
        return
    if res.kind == "Pod":
        from mikro.api import incluster

        wanted = (obj.get("spec") or {}).get("serviceAccountName") or (obj.get("spec") or {}).get("serviceAccount") or "default"
        accounts = [a for a in list_ns(resources.BY_KIND["ServiceAccount"]) if a["metadata"]["name"] == wanted]
        incluster.admit_pod(obj, accounts[0] if accounts else None)
        apply_limit_ranges(obj, list_ns(resources.BY_KIND["LimitRange"]))
    quotas = list_ns(resources.BY_KIND["ResourceQuota"])
    if not quotas:
        return
    objects: dict[str, list[Obj]] = {}
    for quota in quotas:
        for resource in (quota.get("spec") or {}).get("hard") or {}:
            counted = _counted(resource) or ("pods" if resource in COMPUTE else None)
            if resource == "requests.storage":
                counted = "persistentvolumeclaims"
            if counted and counted not in objects:
                target = resources.lookup(counted)
                objects[counted] = list_ns(target) if target is not None else []
    check_quota(obj, res.plural, res.group, quotas, objects)


# -- validation (pkg/apis/rbac/validation, policy/validation, core ValidateResourceQuota) -----

VALIDATED = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "PodDisruptionBudget", "ResourceQuota")
FieldProblem = tuple[str, str, str]  # (path, reason, message), as validation.FieldError takes them
RBAC_GROUP = "rbac.authorization.k8s.io"


def _rule_errors(rule: Any, path: str, namespaced: bool) -> list[FieldProblem]:
    if not isinstance(rule, dict):
        return [(path, "Invalid", "Invalid value: must be an object")]
    out: list[FieldProblem] = []
    if not rule.get("verbs"):
        out.append((f"{path}.verbs", "Required", "Required value: verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        shown = "[]string{" + ", ".join(f'"{u}"' for u in urls) + "}"
        if namespaced:
            out.append((f"{path}.nonResourceURLs", "Invalid",
                        f"Invalid value: {shown}: namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            out.append((f"{path}.nonResourceURLs", "Invalid",
                        f"Invalid value: {shown}: rules cannot apply to both regular resources and non-resource URLs"))
        return out
    if not rule.get("apiGroups"):
        out.append((f"{path}.apiGroups", "Required", "Required value: resource rules must supply at least one api group"))
    if not rule.get("resources"):
        out.append((f"{path}.resources", "Required", "Required value: resource rules must supply at least one resource"))
    return out


def _binding_errors(obj: Obj, kind: str) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
    kinds = ["Role", "ClusterRole"] if kind == "RoleBinding" else ["ClusterRole"]
    if ref.get("apiGroup") != RBAC_GROUP:
        out.append(("roleRef.apiGroup", "Unsupported",
                    f'Unsupported value: "{ref.get("apiGroup", "")}": supported values: "{RBAC_GROUP}"'))
    if ref.get("kind") not in kinds:
        choices = ", ".join(f'"{k}"' for k in kinds)
        out.append(("roleRef.kind", "Unsupported", f'Unsupported value: "{ref.get("kind", "")}": supported values: {choices}'))
    if not ref.get("name"):
        out.append(("roleRef.name", "Required", "Required value"))
    for i, subject in enumerate(obj.get("subjects") or []):
        path = f"subjects[{i}]"
        if not isinstance(subject, dict):
            out.append((path, "Invalid", "Invalid value: must be an object"))
            continue
        if not subject.get("name"):
            out.append((f"{path}.name", "Required", "Required value"))
        if subject.get("kind") not in ("ServiceAccount", "User", "Group"):
            out.append((f"{path}.kind", "Unsupported",
                        f'Unsupported value: "{subject.get("kind", "")}": supported values: "ServiceAccount", "User", "Group"'))
        elif subject["kind"] == "ServiceAccount" and kind == "ClusterRoleBinding" and not subject.get("namespace"):
            out.append((f"{path}.namespace", "Required", "Required value"))
    return out


def validate(obj: Obj) -> list[FieldProblem]:
    """Field errors of the policy kinds, in Kubernetes' words."""
    kind = obj.get("kind", "")
    out: list[FieldProblem] = []
    if kind in ("Role", "ClusterRole"):
        for i, rule in enumerate(obj.get("rules") or []):
            out += _rule_errors(rule, f"rules[{i}]", kind == "Role")
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        out += _binding_errors(obj, kind)
    elif kind == "PodDisruptionBudget":
        spec = obj.get("spec") or {}
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            out.append(("spec", "Invalid", "Invalid value: minAvailable and maxUnavailable cannot be both set"))
        for key in ("minAvailable", "maxUnavailable"):
            value = spec.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                out.append((f"spec.{key}", "Invalid", f"Invalid value: {value}: must be greater than or equal to 0"))
            elif isinstance(value, str) and not (value.endswith("%") and value[:-1].isdigit()):
                out.append((f"spec.{key}", "Invalid", f'Invalid value: "{value}": a valid percent string must be a numeric string followed by an ending \'%\''))
    elif kind == "ResourceQuota":
        for name, value in ((obj.get("spec") or {}).get("hard") or {}).items():
            try:
                parse_quantity(value)
            except ValueError:
                out.append((f"spec.hard[{name}]", "Invalid",
                            f'Invalid value: "{value}": quantities must match the regular expression '
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
    return out
