"""From a Pod to the Docker containers that run it, and from what Docker has to what to do.

Pure: the pod runtime feeds in objects and observed containers, and gets back container
specs (with a spec hash label) and a plan of actions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from mikro.api.validation import parse_quantity
from mikro.config import LABEL_PREFIX
from mikro.node.docker_types import ContainerSpec

INFRA = "POD"  # the container name label of a Pod's infra (network namespace holder)
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0

Lookup = Callable[[str, str, str], str | None]  # (kind ConfigMap|Secret, name, key) -> value


@dataclass(frozen=True)
class PodContext:
    cluster: str
    network: str
    infra_image: str
    node_name: str
    host_ip: str
    state_dir: str


def short_uid(pod: dict[str, Any]) -> str:
    return pod["metadata"]["uid"].replace("-", "")[:8]


def container_name(ctx: PodContext, pod: dict[str, Any], ctr: str, attempt: int) -> str:
    meta = pod["metadata"]
    base = f"{ctx.cluster}_{meta['namespace']}_{meta['name']}_{short_uid(pod)}"
    return f"{base}_POD" if ctr == INFRA else f"{base}_{ctr}_{attempt}"


def labels_for(pod: dict[str, Any], ctr: str, attempt: int = 0) -> dict[str, str]:
    meta = pod["metadata"]
    labels = {
        LABEL_PREFIX + "kind": "pod",
        LABEL_PREFIX + "namespace": meta["namespace"],
        LABEL_PREFIX + "name": meta["name"],
        LABEL_PREFIX + "uid": meta["uid"],
        LABEL_PREFIX + "container": ctr,
        LABEL_PREFIX + "attempt": str(attempt),
    }
    spec = pod.get("spec") or {}
    if spec.get("subdomain"):
        # A headless Service named after the subdomain gives the pod its own DNS names.
        labels[LABEL_PREFIX + "hostname"] = str(spec.get("hostname") or meta["name"])
        labels[LABEL_PREFIX + "subdomain"] = str(spec["subdomain"])
    for key, value in (meta.get("labels") or {}).items():
        labels[f"{LABEL_PREFIX}label.{key}"] = str(value)
    return labels


# Fields added to ContainerSpec after format 2: left out of the hash at their defaults, so
# that containers created before them are not recreated.
_LATER_FIELDS = {
    "group_add": [],
    "read_only": False,
    "cap_add": [],
    "cap_drop": [],
    "privileged": False,
    "security_opt": [],
    "pid_mode": None,
}


def spec_hash(spec: ContainerSpec) -> str:
    data = asdict(spec)
    for key, default in _LATER_FIELDS.items():
        if data.get(key) == default:
            data.pop(key, None)
    data["format"] = 2
    data.pop("name")
    # DNS aliases (headless Services) are changed on the running container, not by recreating it.
    data.pop("aliases")
    data["labels"] = {k: v for k, v in data["labels"].items() if k != LABEL_PREFIX + "attempt"}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def dns_aliases(name: str, namespace: str) -> list[str]:
    """The names a Service answers to; the short name resolves through the search list."""
    return [f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"]


def headless_aliases(
    namespace: str,
    pod_labels: dict[str, str],
    services: list[dict[str, Any]],
    hostname: str | None = None,
    subdomain: str | None = None,
) -> list[str]:
    """The DNS names a pod carries for the headless Services (clusterIP: None) selecting it;
    a pod whose `subdomain` names such a Service also answers to `<hostname>.<service>...`
    (a StatefulSet's `web-0.web`, `web-0.web.default.svc.cluster.local`)."""
    aliases: list[str] = []
    for svc in services:
        spec = svc.get("spec") or {}
        selector = spec.get("selector")
        if spec.get("clusterIP") != "None" or not selector or svc["metadata"].get("namespace") != namespace:
            continue
        if all(pod_labels.get(k) == v for k, v in selector.items()):
            name = svc["metadata"]["name"]
            aliases += dns_aliases(name, namespace)
            if hostname and subdomain == name:
                aliases += dns_aliases(f"{hostname}.{name}", namespace)
    return sorted(aliases)


def headless_key(services: list[dict[str, Any]]) -> tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]:
    """What `headless_aliases` reads of the Services: the headless ones with a selector, as
    (namespace, name, selector); equal keys give every pod the same aliases."""
    return tuple(
        sorted(
            (str(svc["metadata"].get("namespace", "")), str(svc["metadata"]["name"]), tuple(sorted(selector.items())))
            for svc in services
            if (spec := svc.get("spec") or {}).get("clusterIP") == "None" and (selector := spec.get("selector"))
        )
    )


def dns_search(namespace: str) -> list[str]:
    return [f"{namespace}.svc.cluster.local", "svc.cluster.local", "cluster.local"]


# The infra container announces its address as it starts (a gratuitous ARP), then waits. A
# peer that tried that address before the engine had wired it (the ingress, after `mikro
# start`, routing to the pods it routed to before the stop) would otherwise wait for the
# kernel's next ARP probe, a second later.
INFRA_COMMAND = [
    "/bin/sh",
    "-c",
    'set -- $(ip -4 -o addr show dev eth0 2>/dev/null); [ -z "$4" ] || arping -q -U -c 1 -w 1 -I eth0 "${4%/*}"; '
    "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
]


def infra_spec(ctx: PodContext, pod: dict[str, Any], aliases: list[str]) -> ContainerSpec:
    meta = pod["metadata"]
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        # The pod shares the host's network namespace (and its names): no address, aliases,
        # DNS settings or published ports of its own, as Docker's host mode allows none.
        s = ContainerSpec(
            name=container_name(ctx, pod, INFRA, 0),
            image=ctx.infra_image,
            labels=labels_for(pod, INFRA),
            network_mode="host",
            stop_signal="SIGKILL",
            stop_timeout=0,
        )
        s.labels[LABEL_PREFIX + "spec-hash"] = spec_hash(s)
        return s
    ports: dict[str, tuple[str, int]] = {}
    for ctr in spec.get("containers") or []:
        for p in ctr.get("ports") or []:
            if p.get("hostPort"):
                key = f"{p['containerPort']}/{p.get('protocol', 'TCP').lower()}"
                ports[key] = (p.get("hostIP") or "127.0.0.1", int(p["hostPort"]))
    s = ContainerSpec(
        name=container_name(ctx, pod, INFRA, 0),
        image=ctx.infra_image,
        labels=labels_for(pod, INFRA),
        hostname=(spec.get("hostname") or meta["name"])[:63],
        network=ctx.network,
        aliases=aliases,
        dns_search=dns_search(meta["namespace"]),
        dns_opt=["ndots:5"],
        ports=ports,
        stop_signal="SIGKILL",
        stop_timeout=0,
    )
    s.labels[LABEL_PREFIX + "spec-hash"] = spec_hash(s)
    # (after the hash: the running pods of an earlier mikro, whose infra containers run the
    # image's own command, are not started again for it)
    s.command = INFRA_COMMAND
    return s


def _field_ref(pod: dict[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod["metadata"]
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "status.podIP": pod_ip,
        "status.hostIP": host_ip,
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName"),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", "default"),
        "status.podIPs": pod_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    for prefix, source in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return str((meta.get(source) or {}).get(path[len(prefix) + 2 : -2], ""))
    return ""


POD_IP_FIELDS = ("status.podIP", "status.podIPs")


def needs_pod_ip(ctr: dict[str, Any]) -> bool:
    """Whether a container's environment names the pod's IP (known once its infra runs)."""
    return any(
        ((env.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") in POD_IP_FIELDS
        for env in ctr.get("env") or []
    )


class MissingReference(Exception):
    """A Secret or ConfigMap a container needs does not exist (CreateContainerConfigError)."""


class UnsafePath(MissingReference):
    """A volume path that would leave its directory (CreateContainerConfigError)."""


def contained(base: str, relative: str, field: str) -> str:
    """`base/relative`, resolved (symbolic links included), refused when it is not inside
    `base`: the API refuses such paths, and objects stored before it did must not write or
    mount the host's files either."""
    if not isinstance(relative, str) or not relative or "\x00" in relative or os.path.isabs(relative):
        raise UnsafePath(f"{field} {relative!r}: must be a relative path")
    root = os.path.realpath(base)
    target = os.path.realpath(os.path.join(root, relative))
    if target != root and not target.startswith(root + os.sep):
        raise UnsafePath(f"{field} {relative!r}: must not leave its volume ({base})")
    return target


def resolve_env(pod: dict[str, Any], ctr: dict[str, Any], pod_ip: str, host_ip: str, lookup: Lookup) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in ctr.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if not ref:
                continue
            data = lookup(kind, ref["name"], "")
            if data is None:
                if ref.get("optional"):
                    continue
                raise MissingReference(f'{kind.lower()} "{ref["name"]}" not found')
            for k, v in json.loads(data).items():
                env[prefix + k] = v
    for item in ctr.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            value = str(item.get("value") or "")
            # $(VAR) expands variables defined earlier, as Kubernetes does.
            for k, v in env.items():
                value = value.replace(f"$({k})", v)
            env[name] = value
            continue
        source = item["valueFrom"] or {}
        if "fieldRef" in source:
            env[name] = _field_ref(pod, source["fieldRef"].get("fieldPath", ""), pod_ip, host_ip)
        elif "resourceFieldRef" in source:
            res = source["resourceFieldRef"].get("resource", "")
            section, _, rname = res.partition(".")
            value = ((ctr.get("resources") or {}).get(section) or {}).get(rname)
            env[name] = str(value) if value is not None else "0"
        else:
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = source.get(key)
                if ref:
                    value = lookup(kind, ref.get("name", ""), ref.get("key", ""))
                    if value is None:
                        if ref.get("optional"):
                            break
                        raise MissingReference(
                            f'{kind.lower()} "{ref.get("name")}" not found or has no key "{ref.get("key")}"'
                        )
                    env[name] = value
    return env


def resource_limits(ctr: dict[str, Any]) -> tuple[int | None, int | None]:
    limits = (ctr.get("resources") or {}).get("limits") or {}
    mem = int(parse_quantity(limits["memory"])) if "memory" in limits else None
    cpu = int(parse_quantity(limits["cpu"]) * 1e9) if "cpu" in limits else None
    return mem, cpu


def requests_of(pod: dict[str, Any]) -> tuple[float, float]:
    """(cpu cores, memory bytes) the pod requests; limits stand in for missing requests."""
    cpu = mem = 0.0
    for ctr in (pod.get("spec") or {}).get("containers") or []:
        res = ctr.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        if "cpu" in req:
            cpu += parse_quantity(req["cpu"])
        if "memory" in req:
            mem += parse_quantity(req["memory"])
    return cpu, mem


# Security fields Docker cannot honour: accepted, with a warning event.
UNSUPPORTED_POD_SECURITY = (
    "seLinuxOptions",
    "seccompProfile",
    "appArmorProfile",
    "sysctls",
    "windowsOptions",
    "fsGroupChangePolicy",
    "supplementalGroupsPolicy",
    "seLinuxChangePolicy",
)
UNSUPPORTED_CONTAINER_SECURITY = ("seLinuxOptions", "seccompProfile", "appArmorProfile", "windowsOptions", "procMount")


@dataclass(frozen=True)
class Security:
    """What Docker does of a container's effective security context."""

    user: str | None = None
    group_add: tuple[str, ...] = ()
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privileges: bool = False
    host_pid: bool = False


class SecurityRefused(MissingReference):
    """The kubelet refuses to start the container (CreateContainerConfigError)."""


def _capability(name: str) -> str:
    return name.upper().removeprefix("CAP_")


def security(pod: dict[str, Any], ctr: dict[str, Any], image_user: str) -> tuple[Security, list[str]]:
    """The container's effective security context (the container's fields over the pod's), as
    Docker settings, and warnings for what Docker cannot do. Raises SecurityRefused, with the
    kubelet's words, when runAsNonRoot cannot hold."""
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    csc = ctr.get("securityContext") or {}

    def pick(field: str) -> Any:
        return csc[field] if csc.get(field) is not None else psc.get(field)

    uid, gid = pick("runAsUser"), pick("runAsGroup")
    image_uid, _, image_gid = (image_user or "").partition(":")
    if pick("runAsNonRoot"):
        meta = pod["metadata"]
        where = f'(pod: "{meta["name"]}_{meta.get("namespace", "")}({meta.get("uid", "")})", container: {ctr["name"]})'
        if uid is not None:
            if int(uid) == 0:
                raise SecurityRefused(f"container's runAsUser breaks non-root policy {where}")
        elif image_uid in ("", "0"):
            raise SecurityRefused(f"container has runAsNonRoot and image will run as root {where}")
        elif not image_uid.isdigit():
            raise SecurityRefused(
                f"container has runAsNonRoot and image has non-numeric user ({image_uid}), "
                f"cannot verify user is non-root {where}"
            )
    user = None
    if uid is not None or gid is not None:
        user = str(uid) if uid is not None else (image_uid or "0")
        if gid is not None:
            user += f":{gid}"
        elif uid is not None and image_gid:
            user += f":{image_gid}"
    groups = [str(g) for g in psc.get("supplementalGroups") or []]
    if psc.get("fsGroup") is not None:
        groups.insert(0, str(psc["fsGroup"]))
    caps = csc.get("capabilities") or {}
    warnings = [
        f"pod securityContext.{f} is not supported by mikro's Docker runtime and is ignored"
        for f in UNSUPPORTED_POD_SECURITY
        if psc.get(f)
    ] + [
        f"container {ctr['name']}: securityContext.{f} is not supported by mikro's Docker runtime and is ignored"
        for f in UNSUPPORTED_CONTAINER_SECURITY
        if csc.get(f)
    ]
    if psc.get("fsGroup") is not None:
        warnings.append("pod securityContext.fsGroup: volumes keep their ownership; the group is added to the process")
    return (
        Security(
            user=user,
            group_add=tuple(dict.fromkeys(groups)),
            read_only=bool(csc.get("readOnlyRootFilesystem")),
            cap_add=tuple(_capability(c) for c in caps.get("add") or []),
            cap_drop=tuple(_capability(c) for c in caps.get("drop") or []),
            privileged=bool(csc.get("privileged")),
            no_new_privileges=csc.get("allowPrivilegeEscalation") is False,
            host_pid=bool(spec.get("hostPID")),
        ),
        warnings,
    )


def app_spec(
    ctx: PodContext,
    pod: dict[str, Any],
    ctr: dict[str, Any],
    infra_id: str,
    attempt: int,
    env: dict[str, str],
    mounts: dict[str, dict[str, str]],
    sec: Security | None = None,
) -> ContainerSpec:
    mem, cpu = resource_limits(ctr)
    if sec is None:
        security_context = ctr.get("securityContext") or {}
        user = str(security_context["runAsUser"]) if security_context.get("runAsUser") is not None else None
        sec = Security(user=user)
    s = ContainerSpec(
        name=container_name(ctx, pod, ctr["name"], attempt),
        image=ctr["image"],
        labels=labels_for(pod, ctr["name"], attempt),
        entrypoint=ctr.get("command") or None,
        command=ctr.get("args") or None,
        env=env,
        network_mode=f"container:{infra_id}",
        working_dir=ctr.get("workingDir"),
        mem_limit=mem,
        nano_cpus=cpu,
        binds=mounts,
        tty=bool(ctr.get("tty")),
        stdin_open=bool(ctr.get("stdin")),
        user=sec.user,
        group_add=list(sec.group_add),
        read_only=sec.read_only,
        cap_add=list(sec.cap_add),
        cap_drop=list(sec.cap_drop),
        privileged=sec.privileged,
        security_opt=["no-new-privileges"] if sec.no_new_privileges else [],
        pid_mode="host" if sec.host_pid else None,
    )
    s.labels[LABEL_PREFIX + "spec-hash"] = spec_hash(s)
    return s


def back_off(restarts: int) -> float:
    """Kubernetes' crash back-off: 10 s, doubling, capped at 5 minutes."""
    return min(BACKOFF_INITIAL * (2 ** max(restarts - 1, 0)), BACKOFF_MAX)


def exited_at(monotonic_now: float, wall_now: float, finished: float, delay: float) -> float:
    """When a container exited, on the monotonic clock: its wall-clock age (Docker's FinishedAt)
    is read once, bounded to [0, delay], so that a wall-clock jump (a laptop waking up, a clock
    set back) never stretches or skips a back-off; from then on only the monotonic clock counts."""
    return monotonic_now - min(max(wall_now - finished, 0.0), delay)


def restart_delay(restarts: int) -> float:
    """How long the kubelet waits before restarting a container that has already been
    restarted `restarts` times: the first restart at once, then the crash back-off."""
    return back_off(restarts) if restarts > 0 else 0.0


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def volume_files(kind: str, obj: dict[str, Any], items: list[dict[str, Any]] | None) -> dict[str, bytes]:
    """Files a configMap or secret volume holds (path -> content)."""
    if kind == "Secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    else:
        data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    if items:
        return {item.get("path", item["key"]): data[item["key"]] for item in items if item.get("key") in data}
    return data


Picture = tuple[tuple[str, str], ...]


def picture(containers: list[dict[str, Any]]) -> Picture:
    """What a periodic look at a pod's containers (Docker list entries) compares: which
    containers exist and in which state."""
    return tuple(sorted((c["Id"], str(c.get("State", ""))) for c in containers))


def changed_pods(
    uids: list[str], containers: list[dict[str, Any]], pictures: dict[str, Picture]
) -> tuple[list[str], list[dict[str, Any]]]:
    """From one list of the cluster's pod containers: the pods whose containers differ from
    what their last sync saw (or that no sync saw yet), in `uids`' order, and the containers
    of no pod in `uids` (orphans)."""
    by_uid: dict[str, list[dict[str, Any]]] = {}
    for c in containers:
        by_uid.setdefault((c.get("Labels") or {}).get(LABEL_PREFIX + "uid", ""), []).append(c)
    known = set(uids)
    orphans = [c for uid, cs in by_uid.items() if uid not in known for c in cs]
    return [uid for uid in uids if uid not in pictures or pictures[uid] != picture(by_uid.get(uid, []))], orphans


def sans_version(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without what each write changes by itself (resourceVersion, managedFields):
    equal for the pod a status write sent and the pod the store then announces, unless
    another writer changed something else."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}
