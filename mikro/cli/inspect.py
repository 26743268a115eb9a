"""`mikro inspect`, as `microk8s inspect`: one archive to attach to a bug report.

It holds the control plane's log, every stored object (Secrets' values redacted), each mikro
container's state and last log lines, the rendered NGINX configurations, Docker's and the
host's versions, and a short report of the problems found. Collecting is side effects (files,
SQLite read-only, Docker); what counts as a problem and what is redacted are pure functions.
"""

from __future__ import annotations

import io
import json
import platform
import shutil
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mikro import config

REDACTED = "<redacted>"
LOG_LINES = 200
# Below either, the disk is "almost full": pulls, builds and SQLite's WAL start failing there.
DISK_FREE_BYTES = 1 << 30
DISK_FREE_FRACTION = 0.05
# The images mikro itself runs; an image missing here means pods or proxies cannot start.
OWN_IMAGES = ("mikro/pause:1", "mikro/nginx:1.22")


def redact(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret without its values: data, stringData and the last-applied copy (which holds
    them too). Keys are kept, as they help to read a problem."""
    if obj.get("kind") != "Secret":
        return obj
    out = json.loads(json.dumps(obj))
    for key in ("data", "stringData"):
        if isinstance(out.get(key), dict):
            out[key] = {k: REDACTED for k in out[key]}
    annotations = (out.get("metadata") or {}).get("annotations") or {}
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = REDACTED
    return out


@dataclass
class Facts:
    """What was observed, for `problems` to judge."""

    running: bool
    containers: list[dict[str, Any]] = field(default_factory=list)  # Docker's list entries
    images_present: set[str] = field(default_factory=set)
    disk_free: int = 0
    disk_total: int = 1
    ports_taken: list[int] = field(default_factory=list)
    docker_error: str | None = None


def problems(facts: Facts) -> list[str]:
    found: list[str] = []
    if facts.docker_error:
        found.append(f"Docker does not answer: {facts.docker_error}")
    if not facts.running:
        found.append("the control plane is not running (mikro start)")
    for image in OWN_IMAGES:
        if facts.docker_error is None and image not in facts.images_present:
            found.append(f"image {image} is missing (mikro images prepare)")
    for c in latest_runs(facts.containers):
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        status = c.get("Status") or ""
        if facts.running and c.get("State") == "exited" and not status.startswith("Exited (0)"):
            found.append(f"container {name} exited: {status}")
        if c.get("State") == "restarting":
            found.append(f"container {name} is restarting: {status}")
    for port in facts.ports_taken:
        found.append(f"host port {port} is taken by another program (the ingress cannot bind it)")
    if facts.disk_free < DISK_FREE_BYTES or facts.disk_free < facts.disk_total * DISK_FREE_FRACTION:
        found.append(f"the disk of the state directory is almost full ({facts.disk_free >> 20} MiB free)")
    return found


def latest_runs(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last run of each pod container (the runtime keeps the previous one for `logs -p`),
    and every other container of the cluster."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    others = []
    for c in containers:
        labels = c.get("Labels") or {}
        if "io.mikro/attempt" not in labels:
            others.append(c)
            continue
        key = (labels.get("io.mikro/uid", ""), labels.get("io.mikro/container", ""))
        if key not in latest or int(labels["io.mikro/attempt"]) > int(latest[key]["Labels"]["io.mikro/attempt"]):
            latest[key] = c
    return others + list(latest.values())


def _add(tar: tarfile.TarFile, name: str, data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(raw), int(time.time()), 0o600
    tar.addfile(info, io.BytesIO(raw))


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
    except OSError as exc:
        return f"({exc})\n"


def collect(output: Path, cluster: str, running: bool) -> list[str]:
    """Write the archive; answer the problems found."""
    paths = config.paths()
    base = f"inspection-{cluster}"
    facts = Facts(running=running)
    usage = shutil.disk_usage(paths.root if paths.root.exists() else Path.home())
    facts.disk_free, facts.disk_total = usage.free, usage.total
    with tarfile.open(output, "w:gz") as tar:
        _add(tar, f"{base}/controlplane.log", _tail(paths.log, 5000))
        settings = config.read_json(paths.settings) or {}
        settings.pop("token", None)
        _add(tar, f"{base}/cluster.json", json.dumps(settings, indent=2) + "\n")
        if paths.db.exists():
            from mikro.api.store import snapshot

            objects = [redact(o) for o in snapshot(paths.db)]
            _add(tar, f"{base}/objects.yaml", yaml.safe_dump_all(objects, sort_keys=False))
        for folder in (paths.proxies, paths.ingress):
            for conf in sorted(folder.rglob("*.conf")) if folder.is_dir() else []:
                _add(tar, f"{base}/nginx/{folder.name}/{conf.relative_to(folder)}", conf.read_bytes())
        versions = {"mikro": _mikro_version(), "python": platform.python_version(), "host": platform.platform()}
        _collect_docker(tar, base, cluster, facts, versions)
        _add(tar, f"{base}/versions.json", json.dumps(versions, indent=2) + "\n")
        found = problems(facts)
        _add(tar, f"{base}/report.txt", "".join(f"- {p}\n" for p in found) or "no problems found\n")
    output.chmod(0o600)
    return found


def _mikro_version() -> str:
    from mikro import __version__

    return __version__


def _collect_docker(tar: tarfile.TarFile, base: str, cluster: str, facts: Facts, versions: dict[str, Any]) -> None:
    from mikro.node import docker_backend

    try:
        docker = docker_backend.Docker(cluster)
        versions["docker"] = docker.api.version()
        containers = docker.containers()
        facts.images_present = {tag for image in docker.images() for tag in image.get("RepoTags") or []}
    except Exception as exc:  # any failure to reach Docker is itself the finding
        facts.docker_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return
    facts.containers = containers
    states = []
    for c in containers:
        name = c["Names"][0].lstrip("/")
        states.append(
            {
                "name": name,
                "id": c["Id"][:12],
                "image": c.get("Image"),
                "state": c.get("State"),
                "status": c.get("Status"),
                "labels": c.get("Labels"),
            }
        )
        try:
            log = b"".join(docker.logs(c["Id"], follow=False, tail=LOG_LINES, timestamps=True))
        except Exception as exc:  # a container removed meanwhile
            log = f"({exc})\n".encode()
        _add(tar, f"{base}/containers/{name}.log", log)
    _add(tar, f"{base}/containers.json", json.dumps(states, indent=2) + "\n")
    for c in containers:
        if (c.get("Labels") or {}).get("io.mikro/kind") == "ingress" and c.get("State") != "running":
            bindings = ((docker.inspect(c["Id"]) or {}).get("HostConfig") or {}).get("PortBindings") or {}
            for binding in (b for bs in bindings.values() for b in bs or []):
                ip, port = binding.get("HostIp") or "127.0.0.1", int(binding.get("HostPort") or 0)
                if port and not docker_backend.host_port_free(ip, port):
                    facts.ports_taken.append(port)
