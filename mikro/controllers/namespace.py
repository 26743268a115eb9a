"""The namespace controller: a namespace being deleted is emptied, then removed."""

from __future__ import annotations

from datetime import datetime

from mikro.api import crds
from mikro.api.resources import BY_KIND
from mikro.controllers.helpers import Api

NS = BY_KIND["Namespace"]


class NamespaceController:
    name = "namespace"

    def sync(self, api: Api, now: datetime) -> None:
        for ns in api.list(NS):
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            name = ns["metadata"]["name"]
            if (ns.get("status") or {}).get("phase") != "Terminating":
                ns["status"] = {"phase": "Terminating"}
                api.update_status(NS, ns)
            remaining = 0
            for res in [*BY_KIND.values(), *crds.stored()]:
                if not res.namespaced:
                    continue
                for obj in api.list(res, name):
                    remaining += 1
                    if not obj["metadata"].get("deletionTimestamp"):
                        api.delete(res, name, obj["metadata"]["name"])
            if not remaining:
                api.remove(NS, "", name)
