"""The ReplicaSet controller: keep `spec.replicas` active pods of the template. The
ReplicationController, ReplicaSet's predecessor in core/v1 (a plain label map for selector),
is kept the same way by the same code, as kube-controller-manager does with one
ReplicaSetController behind both."""

from __future__ import annotations

from datetime import datetime

from mikro.api.resources import BY_KIND
from mikro.controllers.helpers import Api, Obj, active, guarded, owned_by, pod_from_template, pod_ready

POD, RS, RC = BY_KIND["Pod"], BY_KIND["ReplicaSet"], BY_KIND["ReplicationController"]
COMPONENT = "replicaset-controller"
BURST = 100  # pods created in one pass, at most


def deletion_rank(pod: Obj) -> tuple[int, int, str]:
    """Sort key putting the least useful pod first: not scheduled, not ready, then the youngest."""
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        1 if pod_ready(pod) else 0,
        "~" + "".join(chr(255 - ord(c)) for c in pod["metadata"].get("creationTimestamp", "")),
    )


def pods_to_delete(live: list[Obj], count: int) -> list[Obj]:
    """The `count` pods a scale-down removes, in the order Kubernetes picks them."""
    return sorted(live, key=deletion_rank)[: max(count, 0)]


def replicaset_status(rs: Obj, live: list[Obj]) -> Obj:
    ready = [p for p in live if pod_ready(p)]
    return {
        "replicas": len(live),
        "fullyLabeledReplicas": len(live),
        "readyReplicas": len(ready),
        "availableReplicas": len(ready),
        "observedGeneration": rs["metadata"].get("generation", 1),
    }


class ReplicaSetController:
    name = "replicaset"
    resource = RS
    component = COMPONENT

    def sync(self, api: Api, now: datetime) -> None:
        owners = api.list(self.resource)
        if not owners:
            return
        pods = api.list(POD)
        for rs in owners:
            guarded(self.sync_one, api, rs, pods)

    def sync_one(self, api: Api, rs: Obj, all_pods: list[Obj]) -> None:
        meta = rs["metadata"]
        if meta.get("deletionTimestamp"):
            return
        ns, uid = meta["namespace"], meta["uid"]
        live = [p for p in all_pods if p["metadata"]["namespace"] == ns and owned_by(p, uid) and active(p)]
        diff = int(rs["spec"].get("replicas", 1)) - len(live)
        if diff > 0:
            template = rs["spec"].get("template") or {}
            for _ in range(min(diff, BURST)):
                body = pod_from_template(template, rs, ns)
                body["metadata"]["generateName"] = meta["name"] + "-"
                created = api.create(POD, ns, body)
                live.append(created)
                api.event(rs, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}", self.component)
        elif diff < 0:
            for pod in pods_to_delete(live, -diff):
                api.delete(POD, ns, pod["metadata"]["name"])
                live.remove(pod)
                api.event(rs, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", self.component)
        status = replicaset_status(rs, live)
        if status != rs.get("status"):
            rs["status"] = status
            api.update_status(self.resource, rs)


class ReplicationControllerController(ReplicaSetController):
    name = "replicationcontroller"
    resource = RC
    component = "replication-controller"
