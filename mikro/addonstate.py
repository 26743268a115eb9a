"""The addons' state: the ConfigMap kube-system/mikro-addons, shared by the CLI (which writes
`<addon>: enabled|disabled`) and the control plane (which reports `<addon>.status` and what the
addon chose, such as the dashboard's port). Writes retry on a conflict: several parts of the
control plane report into the same ConfigMap."""

from __future__ import annotations

from typing import Any

from mikro.api.resources import BY_KIND
from mikro.errors import ApiError

ADDONS_NS, ADDONS_CM = "kube-system", "mikro-addons"
CM = BY_KIND["ConfigMap"]


def read(store: Any) -> dict[str, str]:
    cm = store.find(CM, ADDONS_NS, ADDONS_CM)
    return dict((cm or {}).get("data") or {})


def set_values(store: Any, values: dict[str, str]) -> None:
    for _ in range(5):
        cm = store.find(CM, ADDONS_NS, ADDONS_CM)
        if cm is None:
            return
        data = cm.setdefault("data", {})
        if all(data.get(k) == v for k, v in values.items()):
            return
        data.update(values)
        try:
            store.update(CM, cm)
            return
        except ApiError as err:
            if err.code != 409:
                raise
