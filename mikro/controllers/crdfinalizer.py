"""The CRD finalizer controller: a deleted CustomResourceDefinition is held by the
`customresourcecleanup.apiextensions.k8s.io` finalizer while its objects are deleted (each
honouring its own finalizers, so an operator can finish them), then let go and no longer
served, as apiextensions-apiserver's finalizer controller does."""

from __future__ import annotations

from datetime import datetime

from mikro.api import crds
from mikro.api.resources import BY_KIND
from mikro.controllers.helpers import Api, Obj, guarded

CRD = BY_KIND[crds.CRD_KIND]


class CRDFinalizerController:
    name = "crd-finalizer"

    def sync(self, api: Api, now: datetime) -> None:
        for crd in api.list(CRD):
            meta = crd["metadata"]
            if meta.get("deletionTimestamp") and crds.CLEANUP_FINALIZER in (meta.get("finalizers") or []):
                guarded(self.sync_one, api, crd)

    def sync_one(self, api: Api, crd: Obj) -> None:
        remaining = 0
        for res in crds.served(crd)[:1]:  # every version reads the same stored objects
            for item in api.list(res):
                meta = item["metadata"]
                if not meta.get("deletionTimestamp"):
                    api.delete(res, meta.get("namespace", ""), meta["name"])
                if api.find(res, meta.get("namespace", ""), meta["name"]) is not None:
                    remaining += 1  # held by its own finalizers until their controller ends them
        if remaining:
            message = f"CustomResource deletion is in progress: {remaining} remaining"
            if crds.set_condition(crd, "Terminating", "True", "InstanceDeletionInProgress", message):
                api.update_status(CRD, crd)
            return
        crds.set_condition(crd, "Terminating", "False", "InstanceDeletionCompleted", "removed all instances")
        crd = api.update_status(CRD, crd)
        crd["metadata"]["finalizers"] = [f for f in crd["metadata"]["finalizers"] if f != crds.CLEANUP_FINALIZER]
        api.update(CRD, crd)  # the last finalizer gone: the store removes it
        crds.unregister(crd["metadata"]["name"])
