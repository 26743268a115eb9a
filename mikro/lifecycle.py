"""How a cluster's control plane runs: supervised by the Docker engine (the default), or as a
plain background process (`mikro start --no-autostart`).

Supervised, the control plane is one container, `<cluster>-control-plane`, with the restart
policy `unless-stopped`, as kind and k3d keep their nodes: the engine restarts it after a crash
and, after a reboot or an engine restart, starts it again if it was running; `mikro stop` is a
`docker stop`, after which it stays stopped, across engine restarts too. It shares the host's
network (the API listens on the host's 127.0.0.1, as before) and pid namespace (the pid in
`apiserver.json` is a host pid), has the Docker socket and the state directory mounted at
their host paths (so the paths of pods' bind mounts stay valid) and runs as the invoking user.
Pods' containers have no restart policy: the control plane brings them back when it starts,
keeping restart counts, back-off and readiness gating in its hands.

`container_spec` is pure (the container's arguments as a function of the settings); the rest
acts through `docker_backend`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from mikro.config import LABEL_PREFIX
from mikro.node.docker_types import SupervisedContainer

KIND = "controlplane"
RESTART_POLICY = "unless-stopped"
STOP_TIMEOUT = 60  # seconds the engine grants it on `docker stop` and at shutdown: pods stop first
DEFAULT_SOCKET = "/var/run/docker.sock"
HOST_CGROUP, CGROUP_IN_CONTAINER = "/sys/fs/cgroup", "/host/sys/fs/cgroup"
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class LifecycleError(Exception):
    """A reason the cluster cannot be started or stopped, in words for the user."""


def container_name(cluster: str) -> str:
    return f"{cluster}-control-plane"


def docker_socket(docker_host: str | None) -> str | None:
    """The engine's unix socket on the host, or None when the engine is reached over TCP."""
    if not docker_host:
        return DEFAULT_SOCKET
    if docker_host.startswith("unix://"):
        return docker_host.removeprefix("unix://")
    return None


def container_spec(
    cluster: str,
    state_dir: Path,
    image: str,
    docker_host: str | None,
    uid: int,
    gid: int,
    socket_gid: int | None,
    log_level: str | None,
) -> SupervisedContainer:
    """The control plane's container for these settings (validated: each value reaches a
    container name, a bind mount or an environment variable)."""
    if not NAME_RE.match(cluster) or len(cluster) > 50:
        raise LifecycleError(
            f"invalid cluster name {cluster!r} (MIKRO_CLUSTER): use letters, digits, '_', '.' and '-', "
            "starting with a letter or digit, at most 50 characters"
        )
    if not state_dir.is_absolute() or any(ch in str(state_dir) for ch in ":,\n"):
        raise LifecycleError(
            f"the state directory {str(state_dir)!r} must be an absolute path without ':' or ',' "
            "to be mounted into the control plane's container (MIKRO_HOME)"
        )
    name = container_name(cluster)
    env = {"MIKRO_HOME": str(state_dir), "MIKRO_CLUSTER": cluster, "MIKRO_CONTAINER": name}
    binds = {str(state_dir): {"bind": str(state_dir), "mode": "rw"}}
    # The containers' cgroup files, read-only, for the metrics-server addon (a file read per
    # container instead of a second of the Docker stats API each).
    binds[HOST_CGROUP] = {"bind": CGROUP_IN_CONTAINER, "mode": "ro"}
    env["MIKRO_CGROUP_ROOT"] = CGROUP_IN_CONTAINER
    socket = docker_socket(docker_host)
    if socket is not None:
        if not socket.startswith("/") or any(ch in socket for ch in ":,\n"):
            raise LifecycleError(f"DOCKER_HOST {docker_host!r}: the socket must be an absolute path")
        binds[socket] = {"bind": socket, "mode": "rw"}
        env["DOCKER_HOST"] = f"unix://{socket}"
    else:
        env["DOCKER_HOST"] = str(docker_host)  # TCP: the host's network is the container's
    if log_level:
        env["MIKRO_LOG_LEVEL"] = log_level
    root = uid == 0
    return SupervisedContainer(
        name=name,
        image=image,
        labels={LABEL_PREFIX + "kind": KIND, LABEL_PREFIX + "name": "control-plane"},
        command=["--log", str(state_dir / "controlplane.log")],
        env=env,
        binds=binds,
        restart_policy=RESTART_POLICY,
        network_mode="host",
        pid_mode="host",
        user=None if root else f"{uid}:{gid}",
        group_add=[] if root or socket_gid is None else [str(socket_gid)],
        stop_timeout=STOP_TIMEOUT,
    )


def spec_hash(spec: SupervisedContainer) -> str:
    return hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()[:16]


def host_spec(cluster: str, state_dir: Path, image: str) -> SupervisedContainer:
    """`container_spec` for the invoking user and this environment."""
    docker_host = os.environ.get("DOCKER_HOST")
    socket = docker_socket(docker_host)
    try:
        socket_gid = os.stat(socket).st_gid if socket else None
    except OSError:
        socket_gid = None
    return container_spec(
        cluster,
        state_dir.resolve(),
        image,
        docker_host,
        os.getuid(),
        os.getgid(),
        socket_gid,
        os.environ.get("MIKRO_LOG_LEVEL"),
    )


def start_supervised(docker: Any, spec: SupervisedContainer) -> dict[str, Any]:
    """Start the control plane's container (created anew when its arguments or image changed);
    return its inspection right after the start."""
    wanted = spec_hash(spec)
    current = docker.inspect(spec.name)
    labels = ((current or {}).get("Config") or {}).get("Labels") or {}
    if current is None or labels.get(LABEL_PREFIX + "spec-hash") != wanted:
        docker.create_supervised(replace(spec, labels={**spec.labels, LABEL_PREFIX + "spec-hash": wanted}))
        current = None  # created, not running: no second inspection needed to know it
    state = ((current or {}).get("State")) or {}
    if not state.get("Running"):
        docker.start(spec.name)
    return docker.inspect(spec.name) or {}


def start_existing(engine: Any, spec: SupervisedContainer) -> dict[str, Any] | None:
    """`start_supervised` when the container exists with this spec (its common case): start it
    unless it runs, and return its inspection after the start; None when it must be created."""
    current = engine.inspect(spec.name)
    labels = ((current or {}).get("Config") or {}).get("Labels") or {}
    if current is None or labels.get(LABEL_PREFIX + "spec-hash") != spec_hash(spec):
        return None
    if not (current.get("State") or {}).get("Running"):
        engine.start(spec.name)
        current = engine.inspect(spec.name)
    return current


def supervised_state(docker: Any, cluster: str) -> dict[str, Any] | None:
    """The `State` of the cluster's control-plane container, None when there is none."""
    info = docker.inspect(container_name(cluster))
    if info is None or (info.get("Config") or {}).get("Labels", {}).get(LABEL_PREFIX + "cluster") != cluster:
        return None
    return info.get("State") or {}


def stop_supervised(docker: Any, cluster: str, timeout: float) -> bool:
    """`docker stop` the control plane's container (SIGTERM: it stops the pods, then exits);
    the engine then leaves it stopped, after its own restarts too. Whether it was running."""
    state = supervised_state(docker, cluster)
    if state is None or not (state.get("Running") or state.get("Restarting")):
        return False
    docker.stop(container_name(cluster), int(timeout))
    return True


def remove_supervised(docker: Any, cluster: str) -> None:
    if supervised_state(docker, cluster) is not None:
        docker.remove(container_name(cluster))
