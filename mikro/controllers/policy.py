"""The controllers of the policy kinds: ResourceQuota status (`used` kept current), the
disruption controller (PodDisruptionBudget status from the selected pods), the EndpointSlice
mirror of each Service's Endpoints, and the ServiceAccount controller (`default` in every
namespace)."""

from __future__ import annotations

from datetime import datetime

from mikro.api import policy
from mikro.api.resources import BY_KIND, lookup
from mikro.api.validation import selector_matches
from mikro.controllers.helpers import Api, Obj, guarded, owner_ref, pod_ready, rfc3339, short_hash

POD, SVC, EP, NS = BY_KIND["Pod"], BY_KIND["Service"], BY_KIND["Endpoints"], BY_KIND["Namespace"]
QUOTA, PDB, SLICE, SA = (
    BY_KIND["ResourceQuota"],
    BY_KIND["PodDisruptionBudget"],
    BY_KIND["EndpointSlice"],
    BY_KIND["ServiceAccount"],
)
CM = BY_KIND["ConfigMap"]
ROOT_CA = "kube-root-ca.crt"
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MANAGER = "endpointslice-controller.k8s.io"


class QuotaController:
    name = "resourcequota"

    def sync(self, api: Api, now: datetime) -> None:
        for quota in api.list(QUOTA):
            guarded(self.sync_one, api, quota)

    def sync_one(self, api: Api, quota: Obj) -> None:
        ns = quota["metadata"]["namespace"]
        objects: dict[str, list[Obj]] = {}
        for resource in (quota.get("spec") or {}).get("hard") or {}:
            counted = resource[len("count/"):] if resource.startswith("count/") else resource
            if resource in policy.COMPUTE:
                counted = "pods"
            elif resource == "requests.storage":
                counted = "persistentvolumeclaims"
            target = lookup(counted)
            if target is not None and target.namespaced and counted not in objects:
                objects[counted] = api.list(target, ns)
        status = policy.quota_status(quota, objects)
        if quota.get("status") != status:
            quota["status"] = status
            api.update_status(QUOTA, quota)


class DisruptionController:
    name = "disruption"

    def sync(self, api: Api, now: datetime) -> None:
        budgets = api.list(PDB)
        if not budgets:
            return  # no pod list to decode (every pass, most clusters)
        pods = api.list(POD)
        for pdb in budgets:
            guarded(self.sync_one, api, pdb, pods, now)

    def sync_one(self, api: Api, pdb: Obj, pods: list[Obj], now: datetime) -> None:
        meta = pdb["metadata"]
        selector = (pdb.get("spec") or {}).get("selector")
        selected = [
            p
            for p in pods
            if p["metadata"]["namespace"] == meta["namespace"]
            and selector  # a PDB without selector selects nothing (policy/v1)
            and selector_matches(selector, p["metadata"].get("labels"))
            and policy.pod_counts(p)
        ]
        healthy = sum(1 for p in selected if pod_ready(p))
        status = policy.pdb_status(pdb, healthy, len(selected), int(meta.get("generation") or 1))
        old = pdb.get("status") or {}
        old_cond = (old.get("conditions") or [{}])[0]
        new_cond = status["conditions"][0]
        same = old_cond.get("status") == new_cond["status"]
        new_cond["lastTransitionTime"] = old_cond.get("lastTransitionTime") if same else rfc3339(now)
        if not new_cond["lastTransitionTime"]:
            new_cond["lastTransitionTime"] = rfc3339(now)
        if old != status:
            pdb["status"] = status
            api.update_status(PDB, pdb)


def slices_for(svc: Obj, endpoints: Obj) -> list[Obj]:
    """The EndpointSlices that mirror a Service's Endpoints: one per port set (pure)."""
    meta = svc["metadata"]
    out = []
    for subset in endpoints.get("subsets") or []:
        ports = [
            {k: p[k] for k in ("name", "port", "protocol") if k in p} for p in subset.get("ports") or []
        ]
        endpoints_list = []
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            for address in subset.get(field) or []:
                entry: Obj = {
                    "addresses": [address["ip"]],
                    "conditions": {"ready": ready, "serving": ready, "terminating": False},
                }
                if address.get("targetRef"):
                    entry["targetRef"] = address["targetRef"]
                if address.get("nodeName"):
                    entry["nodeName"] = address["nodeName"]
                if address.get("hostname"):
                    entry["hostname"] = address["hostname"]
                endpoints_list.append(entry)
        out.append(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{meta['name']}-{short_hash([meta['uid'], ports], 5)}",
                    "namespace": meta["namespace"],
                    "labels": {SERVICE_NAME: meta["name"], MANAGED_BY: MANAGER},
                    "ownerReferences": [owner_ref(svc)],
                },
                "addressType": "IPv4",
                "endpoints": endpoints_list,
                "ports": ports,
            }
        )
    return out


class EndpointSliceController:
    name = "endpointslice"

    def sync(self, api: Api, now: datetime) -> None:
        slices = api.list(SLICE)
        for svc in api.list(SVC):
            mine = [
                s
                for s in slices
                if s["metadata"]["namespace"] == svc["metadata"]["namespace"]
                and (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == svc["metadata"]["name"]
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY) == MANAGER
            ]
            guarded(self.sync_one, api, svc, mine)
        names = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in api.list(SVC)}
        for s in slices:  # a deleted Service's slices
            labels = s["metadata"].get("labels") or {}
            if labels.get(MANAGED_BY) == MANAGER and (s["metadata"]["namespace"], labels.get(SERVICE_NAME)) not in names:
                guarded(api.delete, SLICE, s["metadata"]["namespace"], s["metadata"]["name"])

    def sync_one(self, api: Api, svc: Obj, existing: list[Obj]) -> None:
        if not (svc.get("spec") or {}).get("selector"):
            return
        ns = svc["metadata"]["namespace"]
        endpoints = api.find(EP, ns, svc["metadata"]["name"]) or {}
        wanted = {s["metadata"]["name"]: s for s in slices_for(svc, endpoints)}
        have = {s["metadata"]["name"]: s for s in existing}
        for name, body in wanted.items():
            current = have.get(name)
            if current is None:
                api.create(SLICE, ns, body)
            elif (current.get("endpoints"), current.get("ports")) != (body["endpoints"], body["ports"]):
                current["endpoints"], current["ports"] = body["endpoints"], body["ports"]
                api.update(SLICE, current)
        for name in have.keys() - wanted.keys():
            api.delete(SLICE, ns, name)


class ServiceAccountController:
    """`default` ServiceAccount in every namespace that is not being deleted."""

    name = "serviceaccount"

    def sync(self, api: Api, now: datetime) -> None:
        root = api.find(CM, "kube-system", ROOT_CA)
        for ns in api.list(NS):
            name = ns["metadata"]["name"]
            if ns["metadata"].get("deletionTimestamp"):
                continue
            if api.find(SA, name, "default") is None:
                body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}
                guarded(api.create, SA, name, body)
            if root is not None and name != root["metadata"]["namespace"]:
                guarded(self.publish_root_ca, api, name, root)

    def publish_root_ca(self, api: Api, ns: str, root: Obj) -> None:
        """The root CA publisher: kube-root-ca.crt, copied from kube-system, in every namespace."""
        data = {"ca.crt": (root.get("data") or {}).get("ca.crt", "")}
        current = api.find(CM, ns, ROOT_CA)
        if current is None:
            api.create(CM, ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": ROOT_CA, "namespace": ns}, "data": data})
        elif current.get("data") != data:
            current["data"] = data
            api.update(CM, current)


def policy_controllers() -> list[ServiceAccountController | EndpointSliceController | QuotaController | DisruptionController]:
    return [ServiceAccountController(), EndpointSliceController(), QuotaController(), DisruptionController()]
