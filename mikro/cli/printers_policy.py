"""kubectl's columns for the policy kinds: RBAC, quota, limits, disruption budgets, network
policies, leases, priority classes, endpoint slices and pod templates. Pure.

The column sets follow kubernetes/pkg/printers/internalversion/printers.go (1.32).
"""

from __future__ import annotations

from typing import Any

from mikro.cli.printers import COLUMNS, Column, _age, _name, _selector, _spec, _status


def _created_at(o: dict[str, Any]) -> str:
    return str((o.get("metadata") or {}).get("creationTimestamp") or "")


def _role_ref(o: dict[str, Any]) -> str:
    ref = o.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _subjects(kind: str) -> Any:
    def cell(o: dict[str, Any]) -> str:
        out = []
        for s in o.get("subjects") or []:
            if s.get("kind") != kind:
                continue
            if kind == "ServiceAccount":
                out.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
            else:
                out.append(str(s.get("name", "")))
        return ", ".join(out)

    return cell


def _int_or_na(key: str) -> Any:
    def cell(o: dict[str, Any]) -> str:
        value = _spec(o).get(key)
        return "N/A" if value is None else str(value)

    return cell


def quota_cells(o: dict[str, Any]) -> tuple[str, str]:
    """REQUEST and LIMIT as kubectl prints them: `pods: 1/2, requests.cpu: 0/1`, sorted."""
    hard = _status(o).get("hard") or _spec(o).get("hard") or {}
    used = _status(o).get("used") or {}
    requests, limits = [], []
    for name in sorted(hard):
        cell = f"{name}: {used.get(name, '0')}/{hard[name]}"
        (limits if name.startswith("limits.") else requests).append(cell)
    return ", ".join(requests), ", ".join(limits)


def _slice_ports(o: dict[str, Any]) -> str:
    ports = [str(p.get("port")) for p in o.get("ports") or [] if p.get("port") is not None]
    return ",".join(ports) or "<unset>"


def _slice_endpoints(o: dict[str, Any]) -> str:
    addresses = [a for e in o.get("endpoints") or [] for a in e.get("addresses") or []]
    if not addresses:
        return "<none>"
    shown = ",".join(addresses[:3])
    return shown + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")


def _template_containers(o: dict[str, Any]) -> tuple[str, str]:
    ctrs = ((o.get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in ctrs), ",".join(c.get("image", "") for c in ctrs)


def _pod_labels(o: dict[str, Any]) -> str:
    labels = ((o.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


_BINDING: list[Column] = [
    ("NAME", 0, _name),
    ("ROLE", 0, _role_ref),
    ("AGE", 0, _age),
    ("USERS", 1, _subjects("User")),
    ("GROUPS", 1, _subjects("Group")),
    ("SERVICEACCOUNTS", 1, _subjects("ServiceAccount")),
]

COLUMNS.update(
    {
        "Role": [("NAME", 0, _name), ("CREATED AT", 0, _created_at)],
        "ClusterRole": [("NAME", 0, _name), ("CREATED AT", 0, _created_at)],
        "RoleBinding": _BINDING,
        "ClusterRoleBinding": _BINDING,
        "LimitRange": [("NAME", 0, _name), ("CREATED AT", 0, _created_at)],
        "ResourceQuota": [
            ("NAME", 0, _name),
            ("AGE", 0, _age),
            ("REQUEST", 0, lambda o: quota_cells(o)[0]),
            ("LIMIT", 0, lambda o: quota_cells(o)[1]),
        ],
        "PodDisruptionBudget": [
            ("NAME", 0, _name),
            ("MIN AVAILABLE", 0, _int_or_na("minAvailable")),
            ("MAX UNAVAILABLE", 0, _int_or_na("maxUnavailable")),
            ("ALLOWED DISRUPTIONS", 0, lambda o: _status(o).get("disruptionsAllowed", 0)),
            ("AGE", 0, _age),
        ],
        "NetworkPolicy": [
            ("NAME", 0, _name),
            ("POD-SELECTOR", 0, lambda o: _selector(_spec(o).get("podSelector"))),
            ("AGE", 0, _age),
        ],
        "Lease": [("NAME", 0, _name), ("HOLDER", 0, lambda o: _spec(o).get("holderIdentity", "")), ("AGE", 0, _age)],
        "PriorityClass": [
            ("NAME", 0, _name),
            ("VALUE", 0, lambda o: o.get("value", 0)),
            ("GLOBAL-DEFAULT", 0, lambda o: str(bool(o.get("globalDefault"))).lower()),
            ("AGE", 0, _age),
            ("PREEMPTIONPOLICY", 0, lambda o: o.get("preemptionPolicy", "")),
        ],
        "EndpointSlice": [
            ("NAME", 0, _name),
            ("ADDRESSTYPE", 0, lambda o: o.get("addressType", "")),
            ("PORTS", 0, _slice_ports),
            ("ENDPOINTS", 0, _slice_endpoints),
            ("AGE", 0, _age),
        ],
        "PodTemplate": [
            ("NAME", 0, _name),
            ("CONTAINERS", 0, lambda o: _template_containers(o)[0]),
            ("IMAGES", 0, lambda o: _template_containers(o)[1]),
            ("POD LABELS", 0, _pod_labels),
        ],
    }
)
