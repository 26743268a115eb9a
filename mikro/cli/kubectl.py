"""kubectl's verbs as a client of mikro's API: get, describe, delete, apply, scale, rollout,
logs, exec. The click commands in `cli` parse arguments and call these."""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mikro.api import resources
from mikro.api.resources import BY_KIND, Resource
from mikro.cli import applyplan, discovery, printers
from mikro.cli.client import Client
from mikro.errors import ApiError

if TYPE_CHECKING:
    from mikro.cli import manifest

LAST_APPLIED = applyplan.LAST_APPLIED
ALL_KINDS = ["Pod", "Service", "Deployment", "ReplicaSet"]


class UsageError(Exception):
    pass


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


def resolve(name: str) -> Resource:
    res = resources.lookup(name)
    if res is None:
        raise UsageError(f'the server doesn\'t have a resource type "{name}"')
    return res


def parse_targets(args: Iterable[str]) -> list[tuple[list[Resource], list[str]]]:
    """`pods`, `po,svc`, `all`, `pod web`, `deploy/web svc/web` -> [(resources, names)]."""
    args = list(args)
    if not args:
        raise UsageError("You must specify the type of resource to get.")
    if all("/" in a for a in args):
        out_: list[tuple[list[Resource], list[str]]] = []
        for a in args:
            kind, _, name = a.partition("/")
            out_.append(([resolve(kind)], [name]))
        return out_
    kinds: list[Resource] = []
    for part in args[0].split(","):
        if part == "all":
            kinds += [BY_KIND[k] for k in ALL_KINDS]
        else:
            kinds.append(resolve(part))
    return [(kinds, args[1:])]


def dump(obj: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(obj, indent=4)
    import yaml

    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).rstrip()


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


def qualified_name(obj: dict[str, Any]) -> str:
    res = resources.kind_of(obj["kind"])
    assert res is not None
    return f"{res.qualified}/{obj['metadata']['name']}"


def get(
    client: Client,
    targets: list[str],
    namespace: str,
    all_namespaces: bool,
    selector: str | None,
    field_selector: str | None,
    output: str | None,
    watch: bool,
) -> int:
    ns = None if all_namespaces else namespace
    if discovery.needs_learning(targets):
        discovery.learn(client)
    groups = parse_targets(targets)
    many_kinds = sum(len(kinds) for kinds, _ in groups) > 1
    objects: list[tuple[Resource, list[dict[str, Any]]]] = []
    list_versions: dict[str, str] = {}
    tables: dict[str, dict[str, Any]] = {}
    for kinds, names in groups:
        for res in kinds:
            if names:
                items = (
                    [client.get(res, ns if res.namespaced else None, n) for n in names]
                    if ns or not res.namespaced
                    else [client.get(res, namespace, n) for n in names]
                )
            elif output in (None, "wide") and not watch and res.custom is None:
                # The server's Table, as kubectl asks for it: rows ready, objects not sent whole.
                query = {k: v for k, v in (("labelSelector", selector), ("fieldSelector", field_selector)) if v}
                table = client.request(
                    "GET", res.base_path(ns if res.namespaced else None), query=query, accept=discovery.TABLE
                )
                tables[res.qualified] = table
                items = [row.get("object") or {} for row in table.get("rows") or []]
            else:
                listing = client.list(
                    res, ns if res.namespaced else None, labelSelector=selector, fieldSelector=field_selector
                )
                items = listing["items"]
                list_versions[res.kind] = listing["metadata"]["resourceVersion"]
                for item in items:
                    item.setdefault("apiVersion", res.api_version)
                    item.setdefault("kind", res.kind)
            objects.append((res, items))
    if output in ("json", "yaml"):
        flat = [o for _, items in objects for o in items]
        for obj in flat:  # as kubectl: shown only with --show-managed-fields
            (obj.get("metadata") or {}).pop("managedFields", None)
        single = len(flat) == 1 and all(names for _, names in groups) and not many_kinds
        out(dump(flat[0] if single else as_list(flat), output))
        return 0
    if output == "name":
        for _, items in objects:
            for o in items:
                out(qualified_name(o))
        return 0
    if output not in (None, "wide"):
        raise UsageError(
            f"unable to match a printer suitable for the output format {output!r}, "
            "allowed formats are: json,name,wide,yaml"
        )
    printed = False
    for res, items in objects:
        if not items:
            continue
        if res.custom is not None:
            names = next(n for kinds, n in groups if res in kinds)
            headers, rows = discovery.table_rows(client, res, ns if res.namespaced else None, names, output == "wide")
        elif res.qualified in tables:
            headers, rows = table_rows(res.kind, tables[res.qualified], output == "wide")
        else:
            headers, rows = printers.rows(res.kind, items, output == "wide")
        if many_kinds:
            rows = [[f"{res.qualified}/{r[0]}", *r[1:]] for r in rows]
        if all_namespaces and res.namespaced:
            headers = ["NAMESPACE", *headers]
            rows = [[o["metadata"].get("namespace", ""), *r] for o, r in zip(items, rows, strict=True)]
        if printed:
            out()
        out(printers.format_table(headers, rows))
        printed = True
    if not printed:
        where = "" if all_namespaces else f" in {namespace} namespace"
        err(f"No resources found{where}.")
    if watch:
        res, items = objects[0]
        headers, rows = printers.rows(res.kind, items, output == "wide")
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
        query = {"watch": "true", "resourceVersion": list_versions.get(res.kind, "0")}
        if selector:
            query["labelSelector"] = selector
        for line in client.stream(res.base_path(ns if res.namespaced else None), query):
            event = json.loads(line)
            _, rows = printers.rows(res.kind, [event["object"]], output == "wide")
            out("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(rows[0])).rstrip())
            sys.stdout.flush()
    return 0


def table_rows(kind: str, table: dict[str, Any], wide: bool) -> tuple[list[str], list[list[str]]]:
    """The headers and cells printers.rows would give, from the server's Table of the kind
    (whose columns are printers.py's, all of them, priority 1 the wide ones)."""
    cols = printers.COLUMNS.get(kind, printers.DEFAULT_COLUMNS)
    shown = [i for i, c in enumerate(cols) if wide or c[1] == 0]
    rows = [[str(cells[i]) for i in shown] for cells in (r.get("cells") or [] for r in table.get("rows") or [])]
    return [cols[i][0] for i in shown], rows


# -- apply / delete ------------------------------------------------------------------------


def merge_diff(old: Any, new: Any) -> Any:
    """The JSON merge patch that turns `old` (last applied) into `new` (the manifest): the
    three-way patch with the live object taken as the last applied."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    return applyplan.three_way(old, new, old)


def apply_documents(
    client: Client, documents: list[manifest.Document], namespace: str, validate: str = "strict"
) -> list[dict[str, Any]]:
    """Create or patch each object, kubectl's client-side apply: a dry run of every document
    first (objects of a namespace the same apply creates are tried as if it existed), so that
    one refusal means nothing is applied. Many at once: `mikro.cli.bulk`."""
    from mikro.cli import bulk

    return bulk.apply_documents(client, documents, namespace, validate)


Deleted = list[tuple[Resource, str | None, str]]


def delete(
    client: Client,
    res: Resource,
    ns: str | None,
    names: list[str],
    cascade: str,
    ignore_missing: bool,
    grace: int | None,
) -> tuple[int, Deleted]:
    """Delete by name, as kubectl prints it; returns the exit code and what was deleted."""
    from mikro.cli import bulk

    return bulk.delete(client, [(res, ns, name) for name in names], cascade, ignore_missing, grace)


def wait_deleted(client: Client, deleted: Deleted, timeout: float = 120) -> None:
    """kubectl's --wait: return once every deleted object is gone (pods stop, namespaces empty)."""
    from mikro.cli import bulk

    bulk.wait_gone(client, deleted, timeout)


# -- describe ------------------------------------------------------------------------------


def _kv(label: str, value: Any, indent: int = 0) -> str:
    return f"{' ' * indent}{label + ':':<{max(16 - indent, len(label) + 2)}}{value}"


def _labels(mapping: dict[str, Any] | None) -> str:
    if not mapping:
        return "<none>"
    return "\n                ".join(f"{k}={v}" for k, v in sorted(mapping.items()))


def describe(client: Client, res: Resource, ns: str, names: list[str], selector: str | None) -> int:
    if names:
        objs = [client.get(res, ns if res.namespaced else None, n) for n in names]
    else:
        objs = client.list(res, ns if res.namespaced else None, labelSelector=selector)["items"]
    for i, obj in enumerate(objs):
        if i:
            out()
        out(describe_text(client, res, obj))
    if not objs:
        err(f"No resources found in {ns} namespace.")
    return 0


def describe_text(client: Client, res: Resource, obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    lines = [_kv("Name", meta["name"])]
    if res.namespaced:
        lines.append(_kv("Namespace", meta.get("namespace", "")))
    if res.kind == "Pod":
        lines.append(_kv("Node", f"{spec.get('nodeName', '<none>')}/{status.get('hostIP', '')}"))
        lines.append(_kv("Start Time", status.get("startTime", "<unset>")))
    lines.append(_kv("Labels", _labels(meta.get("labels"))))
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    lines.append(_kv("Annotations", _labels(annotations)))
    if res.kind == "Pod":
        reason = printers.pod_status(obj)[0]
        lines.append(_kv("Status", reason if meta.get("deletionTimestamp") else status.get("phase", "Pending")))
        lines.append(_kv("IP", status.get("podIP", "")))
        owners = meta.get("ownerReferences") or []
        lines.append(_kv("Controlled By", f"{owners[0]['kind']}/{owners[0]['name']}" if owners else "<none>"))
        lines.append("Containers:")
        by_name = {cs["name"]: cs for cs in status.get("containerStatuses") or []}
        for ctr in spec.get("containers") or []:
            cs = by_name.get(ctr["name"], {})
            lines.append(f"  {ctr['name']}:")
            lines.append(_kv("Container ID", cs.get("containerID", ""), 4))
            lines.append(_kv("Image", ctr.get("image"), 4))
            lines.append(_kv("Image ID", cs.get("imageID", ""), 4))
            ports = ",".join(f"{p['containerPort']}/{p.get('protocol', 'TCP')}" for p in ctr.get("ports") or [])
            lines.append(_kv("Port", ports or "<none>", 4))
            for title, state in (("State", cs.get("state") or {}), ("Last State", cs.get("lastState") or {})):
                if not state:
                    if title == "Last State":
                        continue
                    state = {"waiting": {"reason": "ContainerCreating"}}
                ((kind, detail),) = state.items()
                lines.append(_kv(title, kind.capitalize(), 4))
                for key in ("reason", "message", "exitCode", "startedAt", "finishedAt"):
                    if detail.get(key) is not None:
                        lines.append(_kv(key[0].upper() + key[1:], detail[key], 6))
            lines.append(_kv("Ready", str(cs.get("ready", False)), 4))
            lines.append(_kv("Restart Count", cs.get("restartCount", 0), 4))
            env = ctr.get("env") or []
            if env:
                lines.append("    Environment:")
                for e in env:
                    lines.append(f"      {e['name']}:  {e.get('value', '<set from a reference>')}")
        lines.append("Conditions:")
        lines.append("  Type                        Status")
        for c in status.get("conditions") or []:
            lines.append(f"  {c['type']:<28}{c['status']}")
    elif res.kind in ("Deployment", "ReplicaSet"):
        lines.append(_kv("Selector", printers._selector(spec.get("selector"))))
        if res.kind == "Deployment":
            lines.append(
                _kv(
                    "Replicas",
                    f"{spec.get('replicas', 0)} desired | {status.get('updatedReplicas', 0)} "
                    f"updated | {status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} "
                    f"available | {status.get('unavailableReplicas', 0)} unavailable",
                )
            )
            strategy = spec.get("strategy") or {}
            lines.append(_kv("StrategyType", strategy.get("type", "RollingUpdate")))
            rolling = strategy.get("rollingUpdate") or {}
            if rolling:
                lines.append(
                    _kv(
                        "RollingUpdateStrategy",
                        f"{rolling.get('maxUnavailable')} max unavailable, {rolling.get('maxSurge')} max surge",
                    )
                )
        else:
            lines.append(_kv("Replicas", f"{status.get('replicas', 0)} current / {spec.get('replicas', 0)} desired"))
        lines.append("Pod Template:")
        for ctr in ((spec.get("template") or {}).get("spec") or {}).get("containers") or []:
            lines.append(f"  {ctr['name']}:")
            lines.append(_kv("Image", ctr.get("image"), 4))
        if res.kind == "Deployment":
            lines.append("Conditions:")
            lines.append("  Type           Status  Reason")
            for c in status.get("conditions") or []:
                lines.append(f"  {c['type']:<15}{c['status']:<8}{c.get('reason', '')}")
    elif res.kind == "Service":
        lines.append(_kv("Selector", ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>"))
        lines.append(_kv("Type", spec.get("type", "ClusterIP")))
        lines.append(_kv("IP", spec.get("clusterIP", "")))
        for p in spec.get("ports") or []:
            lines.append(_kv("Port", f"{p.get('name') or '<unset>'}  {p['port']}/{p.get('protocol', 'TCP')}"))
            lines.append(_kv("TargetPort", f"{p.get('targetPort')}/{p.get('protocol', 'TCP')}"))
            if p.get("nodePort"):
                lines.append(
                    _kv("NodePort", f"{p.get('name') or '<unset>'}  {p['nodePort']}/{p.get('protocol', 'TCP')}")
                )
        try:
            ep = client.get(BY_KIND["Endpoints"], meta["namespace"], meta["name"])
            lines.append(_kv("Endpoints", printers._endpoints(ep)))
        except ApiError:
            lines.append(_kv("Endpoints", "<none>"))
    elif res.kind == "Ingress":
        lines.append(_kv("Ingress Class", spec.get("ingressClassName") or "<none>"))
        lines.append(_kv("Address", printers._ingress_address(obj)))
        lines.append("Rules:")
        lines.append("  Host        Path  Backends")
        for rule in spec.get("rules") or []:
            lines.append(f"  {rule.get('host') or '*'}")
            for p in (rule.get("http") or {}).get("paths") or []:
                svc = (p.get("backend") or {}).get("service") or {}
                port = svc.get("port") or {}
                lines.append(
                    f"              {p.get('path', '/')}   {svc.get('name')}:{port.get('number', port.get('name'))}"
                )
    else:
        body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
        if body:
            lines.append(dump(body, "yaml"))
    lines.append(events_text(client, obj))
    return "\n".join(lines)


def events_text(client: Client, obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    if not meta.get("namespace"):
        return "Events:  <none>"
    try:
        events = client.list(
            BY_KIND["Event"], meta["namespace"], fieldSelector=f"involvedObject.uid={meta.get('uid')}"
        )["items"]
    except ApiError:
        events = []
    if not events:
        return "Events:  <none>"
    events.sort(key=lambda e: (e.get("lastTimestamp") or "", e.get("eventTime") or ""))
    rows = [
        [
            e.get("type", ""),
            e.get("reason", ""),
            printers.age(e.get("lastTimestamp"))
            if e.get("count", 1) == 1
            else f"{printers.age(e.get('lastTimestamp'))} (x{e['count']} over {printers.age(e.get('firstTimestamp'))})",
            (e.get("source") or {}).get("component", ""),
            e.get("message", ""),
        ]
        for e in events
    ]
    table = printers.format_table(
        ["Type", "Reason", "Age", "From", "Message"], [["----", "------", "----", "----", "-------"], *rows]
    )
    return "Events:\n" + "\n".join("  " + line for line in table.splitlines())


# -- workloads -----------------------------------------------------------------------------


def deployment_progress(d: dict[str, Any]) -> tuple[bool, str]:
    """kubectl rollout status's messages for a Deployment."""
    name = d["metadata"]["name"]
    spec, status = d.get("spec") or {}, d.get("status") or {}
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    if status.get("observedGeneration", 0) < d["metadata"].get("generation", 1):
        return False, "Waiting for deployment spec update to be observed..."
    if updated < replicas:
        return False, (
            f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} new '
            "replicas have been updated..."
        )
    if total > updated:
        return False, (
            f'Waiting for deployment "{name}" rollout to finish: {total - updated} old replicas are '
            "pending termination..."
        )
    if available < updated:
        return False, (
            f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} updated '
            "replicas are available..."
        )
    return True, f'deployment "{name}" successfully rolled out'


STUCK_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "RunContainerError",
}


def stuck_reason(client: Client, pods: list[dict[str, Any]]) -> str | None:
    """Why a workload cannot become ready, as a user needs it: the image error with its
    message, or the crash loop with the last log lines."""
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason not in STUCK_REASONS:
                continue
            if reason == "CrashLoopBackOff" and cs.get("restartCount", 0) < 2:
                continue
            name = pod["metadata"]["name"]
            text = f"pod {name} container {cs['name']}: {reason}: {waiting.get('message', '')}"
            if reason == "CrashLoopBackOff":
                try:
                    lines = b"".join(
                        client.stream(
                            f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{name}/log",
                            {"container": cs["name"], "previous": "true", "tailLines": "10"},
                        )
                    ).decode(errors="replace")
                    text += "\nlast log lines:\n" + lines.rstrip()
                except ApiError:
                    pass
            return text
    return None


def pods_of(client: Client, obj: dict[str, Any]) -> list[dict[str, Any]]:
    ns = obj["metadata"]["namespace"]
    if obj["kind"] == "Pod":
        return [obj]
    selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    query = ",".join(f"{k}={v}" for k, v in selector.items())
    return client.list(BY_KIND["Pod"], ns, labelSelector=query)["items"]


def wait_ready(client: Client, objs: list[dict[str, Any]], timeout: float, for_apply: bool = True) -> int:
    """`apply --wait` / `rollout status`: live progress until every workload is ready."""
    from mikro.cli import rollout  # rollout imports this module

    pending = [o for o in objs if o["kind"] in ("Deployment", "Pod", "Job", "StatefulSet", "DaemonSet")]
    deadline = time.monotonic() + timeout
    last_message: dict[str, str] = {}
    stuck_since: dict[str, float] = {}
    while pending and time.monotonic() < deadline:
        still = []
        for o in pending:
            res = BY_KIND[o["kind"]]
            current = client.get(res, o["metadata"]["namespace"], o["metadata"]["name"])
            if o["kind"] == "Deployment":
                done, message = deployment_progress(current)
            elif o["kind"] == "Job":
                from mikro.cli.batch import job_progress

                done, message, failure = job_progress(current)
                if failure:
                    err(f"error: {qualified_name(current)} failed: {failure}")
                    return 1
            elif o["kind"] in ("StatefulSet", "DaemonSet"):
                done, message = rollout.progress(current, for_apply=for_apply)
            else:
                reason, ready, total, _, _ = printers.pod_status(current)
                done, message = ready == total and reason == "Running", f'pod "{o["metadata"]["name"]}": {reason}'
            key = qualified_name(current)
            if message != last_message.get(key):
                out(message)
                last_message[key] = message
            if done:
                continue
            reason = stuck_reason(client, pods_of(client, current))
            if reason:
                first = stuck_since.setdefault(key, time.monotonic())
                if time.monotonic() - first > 5:
                    err(f"error: {key} cannot become ready: {reason}")
                    return 1
            else:
                stuck_since.pop(key, None)
            still.append(current)
        pending = still
        if pending:
            time.sleep(0.25)
    if pending:
        err(f"error: timed out waiting for {', '.join(qualified_name(o) for o in pending)}")
        return 1
    if for_apply:  # ready is not yet answering: until the proxies and the ingress route to them
        from mikro.cli.routes import wait_routed

        unrouted = wait_routed(client, objs, deadline)
        if unrouted:
            err(f"error: timed out waiting for the proxies and the ingress to route to {', '.join(unrouted)}")
            return 1
    return 0


def rollout_history(client: Client, deploy: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    uid = deploy["metadata"]["uid"]
    rss = client.list(BY_KIND["ReplicaSet"], deploy["metadata"]["namespace"])["items"]
    out_ = []
    for rs in rss:
        if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences") or []):
            rev = int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", 0))
            out_.append((rev, rs))
    return sorted(out_, key=lambda x: x[0])


def rollout_undo(client: Client, deploy: dict[str, Any], to_revision: int) -> str:
    history = rollout_history(client, deploy)
    if len(history) < 2 and not to_revision:
        raise UsageError("no rollout history found for deployment " + deploy["metadata"]["name"])
    if to_revision:
        match = [rs for rev, rs in history if rev == to_revision]
        if not match:
            raise UsageError(f"unable to find specified revision {to_revision} in history")
        target = match[0]
    else:
        target = history[-2][1]
    template = copy.deepcopy(target["spec"]["template"])
    template["metadata"]["labels"].pop("pod-template-hash", None)
    client.patch(
        BY_KIND["Deployment"],
        deploy["metadata"]["namespace"],
        deploy["metadata"]["name"],
        [{"op": "replace", "path": "/spec/template", "value": template}],
        kind="application/json-patch+json",
    )
    return f"deployment.apps/{deploy['metadata']['name']} rolled back"
