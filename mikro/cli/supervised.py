"""The commands' side of the Docker-supervised control plane (see `mikro.lifecycle`): start it
and wait until it answers, stop it, tell whether it starts at boot. Imported only by the
lifecycle commands, which need Docker anyway."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mikro import config, lifecycle
from mikro.lifecycle import LifecycleError
from mikro.node import prestart

if TYPE_CHECKING:
    from mikro.node.docker_backend import Docker

# The Docker SDK is imported by the functions (0.25 s of CPU): `start` sets the stopped
# containers starting first.

POLL_EVERY, HEALTH_EVERY, INSPECT_EVERY = 0.01, 0.05, 0.5  # seconds, while waiting for the start


def docker_or_none(cluster: str) -> Docker | None:
    from mikro.node.docker_backend import Docker, DockerUnavailable

    try:
        return Docker(cluster)
    except DockerUnavailable:
        return None


def _log_tail(paths: config.Paths) -> list[str]:
    try:
        return paths.log.read_text(errors="replace").strip().splitlines()[-5:]
    except OSError:
        return []


def _start_known(paths: config.Paths, cluster: str) -> tuple[Any, lifecycle.SupervisedContainer, dict[str, Any]] | None:
    """The common start, over the engine's socket without the Docker SDK (see
    mikro.node.enginelite): the image for this code and a container of this spec exist, and it
    is started. None when anything is otherwise (the SDK's path then decides and words it)."""
    from mikro.node import cpimage, enginelite

    engine = enginelite.Engine.from_env()
    if engine is None:
        return None
    try:
        image = cpimage.current_tag(engine, cpimage.default_cache())
        if image is None:
            return None
        spec = lifecycle.host_spec(cluster, paths.root, image)
        info = lifecycle.start_existing(engine, spec)
    except enginelite.EngineError:
        return None
    return (engine, spec, info) if info is not None else None


# What `start_early` started: (engine, spec, inspection), for `start`.
_early: tuple[Any, lifecycle.SupervisedContainer, dict[str, Any]] | None = None


def start_early(paths: config.Paths, cluster: str) -> None:
    """Start the control plane's container by the common path now (see mikro.cli.entry), for
    `start` to wait on; nothing when it needs the full path."""
    global _early
    _early = _start_known(paths, cluster)


def started_early() -> bool:
    return _early is not None


def start(
    paths: config.Paths,
    cluster: str,
    timeout: float,
    healthy: Callable[[dict[str, Any]], bool],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Start the control plane's container (building its image first when mikro's code
    changed) and wait until its API answers; return what it wrote to apiserver.json. The
    containers the last stop stopped start again meanwhile (see mikro.node.prestart)."""
    from mikro.node.enginelite import EngineError

    # The stopped pods' containers first (starting them is the longest chain), the control
    # plane's container beside them; during a build of its image, they start meanwhile.
    prestarting = prestart.begin(paths.root, only_if_recorded=True)
    known = _early or _start_known(paths, cluster)
    if known is not None:
        docker, spec, info = known
    else:
        docker, spec, info = _start_full(paths, cluster, progress)
    restarts = int(info.get("RestartCount") or 0)
    pid = (info.get("State") or {}).get("Pid")
    # The endpoint file is a cheap read: look at it often; ask the engine whether the
    # container still runs (a round trip) less often, and the API whether it answers (a TLS
    # handshake, CPU taken from the starting control plane) once the file says it is ready.
    deadline = time.monotonic() + timeout
    next_inspect = time.monotonic() + INSPECT_EVERY  # it ran a moment ago: `info` says so
    next_health = 0.0
    while (now := time.monotonic()) < deadline:
        if now >= next_inspect:
            next_inspect = now + INSPECT_EVERY
            try:
                info = docker.inspect(spec.name) or {}
            except EngineError:
                info = {"State": {"Running": True, "Pid": pid}, "RestartCount": restarts}  # ask again later
            state = info.get("State") or {}
            if not state.get("Running") or state.get("Restarting") or int(info.get("RestartCount") or 0) > restarts:
                # It exited during the start: stop it, or the engine would restart it over and over.
                try:
                    docker.stop(spec.name, 5)
                except EngineError:
                    pass
                tail = _log_tail(paths)
                if tail and tail[-1].startswith("error: "):
                    raise LifecycleError(tail[-1].removeprefix("error: "))
                raise LifecycleError("the control plane exited during start:\n" + "\n".join(tail))
            pid = state.get("Pid")
        endpoint = config.read_json(paths.endpoint)
        if endpoint and endpoint.get("pid") == pid and endpoint.get("ready", True) and now >= next_health:
            next_health = now + HEALTH_EVERY
            if healthy(endpoint):
                if prestarting is not None:
                    prestarting.join()  # done already: the control plane waited for it
                return endpoint
        time.sleep(POLL_EVERY)
    raise LifecycleError(f"the control plane did not become ready within {timeout:.0f}s; see {paths.log}")


def _start_full(
    paths: config.Paths, cluster: str, progress: Callable[[str], None]
) -> tuple[Any, lifecycle.SupervisedContainer, dict[str, Any]]:
    """Through the Docker SDK: build the image when the code changed, create the container
    when its arguments changed, start it."""
    from mikro.node import cpimage
    from mikro.node.docker_backend import Docker, DockerError, DockerUnavailable
    from mikro.node.images import ImageError

    try:
        docker = Docker(cluster)
    except DockerUnavailable as exc:
        raise LifecycleError(str(exc)) from None
    try:
        image, _ = cpimage.ensure(docker, progress, cache=cpimage.default_cache())
        spec = lifecycle.host_spec(cluster, paths.root, image)
        info = lifecycle.start_supervised(docker, spec)
    except ImageError as exc:
        raise LifecycleError(f"{exc}; `mikro start --no-autostart` runs the control plane without it") from None
    except DockerError as exc:
        raise LifecycleError(f"cannot start the control plane's container: {exc}") from None
    return docker, spec, info


def stop(cluster: str, timeout: float) -> bool:
    """Stop the supervised control plane if it runs; whether it did. Over the engine's socket
    without the Docker SDK where it can be (0.25 s of CPU to import: see
    mikro.node.enginelite); anything unexpected goes the SDK's way, which words it."""
    from mikro.node import enginelite

    engine = enginelite.Engine.from_env(timeout + enginelite.TIMEOUT)  # the stop waits up to `timeout`
    if engine is not None:
        try:
            return lifecycle.stop_supervised(engine, cluster, timeout)
        except enginelite.EngineError:
            pass
        finally:
            engine.close()
    docker = docker_or_none(cluster)
    return docker is not None and lifecycle.stop_supervised(docker, cluster, timeout)


def forget(cluster: str) -> None:
    """Remove the (stopped) control plane's container: the cluster now runs unsupervised."""
    docker = docker_or_none(cluster)
    if docker is not None:
        lifecycle.remove_supervised(docker, cluster)


def starts_at_boot(cluster: str) -> bool | None:
    """Whether the engine will start the control plane at its next start (None: Docker does
    not answer). A container stopped with `mikro stop` stays stopped."""
    docker = docker_or_none(cluster)
    if docker is None:
        return None
    state = lifecycle.supervised_state(docker, cluster)
    return bool(state and (state.get("Running") or state.get("Restarting")))
