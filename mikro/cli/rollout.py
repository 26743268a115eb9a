"""`rollout status|history|undo|restart` for StatefulSets and DaemonSets, as kubectl does them:
status messages from kubectl's status viewers, history from ControllerRevisions, undo by
putting a revision's template back (the controller then renumbers that revision)."""

from __future__ import annotations

import time
from typing import Any

from mikro.api.resources import BY_KIND, Resource
from mikro.cli.client import Client
from mikro.cli.kubectl import UsageError

CR = BY_KIND["ControllerRevision"]
Obj = dict[str, Any]


class RolloutError(UsageError):
    """A rollout verb that cannot be done (kubectl's wording)."""


def strategy_type(obj: Obj) -> str:
    return ((obj.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")


def statefulset_progress(sts: Obj) -> tuple[bool, str]:
    """kubectl's StatefulSetStatusViewer."""
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    if strategy_type(sts) != "RollingUpdate":
        raise RolloutError("rollout status is only available for RollingUpdate strategy type")
    if not status.get("observedGeneration") or sts["metadata"].get("generation", 1) > status["observedGeneration"]:
        return False, "Waiting for statefulset spec update to be observed..."
    replicas = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    if ready < replicas:
        return False, f"Waiting for {replicas - ready} pods to be ready..."
    updated = int(status.get("updatedReplicas") or 0)
    rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate")
    if rolling is not None:
        # kubectl's wording whenever rollingUpdate is set (partition defaults to 0, so always).
        partition = int(rolling.get("partition") or 0)
        if updated < replicas - partition:
            return False, (
                f"Waiting for partitioned roll out to finish: {updated} out of {replicas - partition} "
                "new pods have been updated..."
            )
        return True, f"partitioned roll out complete: {updated} new pods have been updated..."
    if status.get("updateRevision") != status.get("currentRevision"):
        return False, (
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{status.get('updateRevision')}..."
        )
    return True, (
        f"statefulset rolling update complete {status.get('currentReplicas', 0)} pods at revision "
        f"{status.get('currentRevision')}..."
    )


def daemonset_progress(ds: Obj) -> tuple[bool, str]:
    """kubectl's DaemonSetStatusViewer."""
    name, status = ds["metadata"]["name"], ds.get("status") or {}
    if strategy_type(ds) != "RollingUpdate":
        raise RolloutError("rollout status is only available for RollingUpdate strategy type")
    if ds["metadata"].get("generation", 1) > int(status.get("observedGeneration") or 0):
        return False, "Waiting for daemon set spec update to be observed..."
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    if updated < desired:
        return False, (
            f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods have been updated...'
        )
    if available < desired:
        return (
            False,
            f'Waiting for daemon set "{name}" rollout to finish: {available} of {desired} updated pods are available...',
        )
    return True, f'daemon set "{name}" successfully rolled out'


def ready_progress(obj: Obj) -> tuple[bool, str]:
    """`apply --wait` for a set with the OnDelete strategy: every pod ready is enough."""
    name, status = obj["metadata"]["name"], obj.get("status") or {}
    if obj["kind"] == "StatefulSet":
        want, ready = int((obj.get("spec") or {}).get("replicas", 1)), int(status.get("readyReplicas") or 0)
    else:
        want, ready = int(status.get("desiredNumberScheduled") or 0), int(status.get("numberReady") or 0)
    if obj["metadata"].get("generation", 1) > int(status.get("observedGeneration") or 0):
        return False, f"Waiting for {obj['kind'].lower()} spec update to be observed..."
    if ready < want:
        return False, f'Waiting for {obj["kind"].lower()} "{name}": {ready} of {want} pods are ready...'
    return True, f'{obj["kind"].lower()} "{name}" has {ready} of {want} pods ready'


def progress(obj: Obj, for_apply: bool = False) -> tuple[bool, str]:
    if for_apply and strategy_type(obj) != "RollingUpdate":
        return ready_progress(obj)
    return statefulset_progress(obj) if obj["kind"] == "StatefulSet" else daemonset_progress(obj)


def history(client: Client, obj: Obj) -> list[Obj]:
    """The object's ControllerRevisions, oldest first."""
    uid = obj["metadata"]["uid"]
    revs = client.list(CR, obj["metadata"]["namespace"])["items"]
    owned = [r for r in revs if any(ref.get("uid") == uid for ref in r["metadata"].get("ownerReferences") or [])]
    return sorted(owned, key=lambda r: int(r.get("revision") or 0))


def revision_template(rev: Obj) -> Obj:
    tpl = dict(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    tpl.pop("$patch", None)
    return tpl


def history_lines(client: Client, res: Resource, obj: Obj, revision: int = 0) -> list[str]:
    revs = history(client, obj)
    if revision:
        match = [r for r in revs if int(r.get("revision") or 0) == revision]
        if not match:
            raise RolloutError(f"unable to find the specified revision {revision}")
        import yaml  # only `rollout history --revision` prints YAML: not at import

        body = yaml.safe_dump({"template": revision_template(match[0])}, sort_keys=False)
        return [f"{res.qualified}/{obj['metadata']['name']} with revision #{revision}", "Pod Template:", body.rstrip()]
    lines = [f"{res.qualified}/{obj['metadata']['name']}", "REVISION  CHANGE-CAUSE"]
    for rev in revs:
        cause = (rev["metadata"].get("annotations") or {}).get("kubernetes.io/change-cause", "<none>")
        lines.append(f"{int(rev.get('revision') or 0):<10}{cause}")
    return lines


def undo(client: Client, res: Resource, obj: Obj, to_revision: int) -> str:
    revs = history(client, obj)
    name = obj["metadata"]["name"]
    if to_revision:
        match = [r for r in revs if int(r.get("revision") or 0) == to_revision]
        if not match:
            raise RolloutError(f"unable to find specified revision {to_revision} in history")
        target = match[0]
    else:
        if len(revs) < 2:
            raise RolloutError(f"no rollout history found for {res.kind.lower()} {name!r}")
        target = revs[-2]
    template = revision_template(target)
    if template == (obj.get("spec") or {}).get("template"):
        return f"{res.qualified}/{name} skipped rollback (current template already matches revision {target.get('revision')})"
    client.patch(
        res,
        obj["metadata"]["namespace"],
        name,
        [{"op": "replace", "path": "/spec/template", "value": template}],
        kind="application/json-patch+json",
    )
    return f"{res.qualified}/{name} rolled back"


def restart(client: Client, res: Resource, ns: str, name: str) -> str:
    if res.kind == "StatefulSet" or res.kind == "DaemonSet":
        obj = client.get(res, ns, name)
        if strategy_type(obj) == "OnDelete":
            raise RolloutError(f"can't restart {name}: {res.kind.lower()} updateStrategy OnDelete is not supported")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    client.patch(
        res,
        ns,
        name,
        {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}},
        kind="application/strategic-merge-patch+json",
    )
    return f"{res.qualified}/{name} restarted"
