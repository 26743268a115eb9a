"""The one module that talks to Docker.

Everything mikro creates carries `io.mikro/cluster=<name>`; mikro lists, changes and removes
only what carries its own cluster's label.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
from docker.types import IPAMConfig, IPAMPool

from mikro.config import LABEL_PREFIX
from mikro.node.docker_types import ContainerSpec, SupervisedContainer

log = logging.getLogger("mikro.docker")

LABEL_CLUSTER = LABEL_PREFIX + "cluster"
DockerError = docker.errors.DockerException
NotFound = docker.errors.NotFound
ImageNotFound = docker.errors.ImageNotFound


IMAGE_MAX_AGE = 2.0  # seconds an image inspection answers `image_recent`


class DockerUnavailable(Exception):
    pass


class Docker:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        try:
            self.client = docker.from_env(timeout=120)
            self.client.ping()
        except DockerError as exc:
            raise DockerUnavailable(
                f"Docker does not answer at {host} ({exc.__class__.__name__}); start the Docker engine "
                "(for example `dockerd &` or `systemctl start docker`) and try again"
            ) from None
        self.api = self.client.api
        self.net_id: str | None = None  # the id of the cluster network as this process knows it
        self._images: dict[str, tuple[float, dict[str, Any]]] = {}  # ref -> (monotonic time, inspection)

    # -- networks --------------------------------------------------------------------------

    def network_name(self) -> str:
        return self.cluster

    def ensure_network(self, subnet: str | None) -> str:
        """Create the cluster's bridge network if needed; return its subnet. A new network
        takes the first free /16 of 10.152-10.199 so that two clusters never overlap."""
        name = self.network_name()
        try:
            net = self.client.networks.get(name)
            if (net.attrs.get("Labels") or {}).get(LABEL_CLUSTER) != self.cluster:
                raise DockerUnavailable(
                    f"a Docker network named {name!r} exists and is not mikro's; "
                    "choose another cluster name with MIKRO_CLUSTER"
                )
            self.net_id = net.id
            return net.attrs["IPAM"]["Config"][0]["Subnet"]
        except NotFound:
            pass
        used = []
        for net in self.client.networks.list():
            for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
                if cfg.get("Subnet"):
                    try:
                        used.append(ipaddress.ip_network(cfg["Subnet"]))
                    except ValueError:
                        pass
        candidates = [subnet] if subnet else [f"10.{n}.0.0/16" for n in range(152, 200)]
        for candidate in candidates:
            net16 = ipaddress.ip_network(candidate)
            if any(net16.overlaps(u) for u in used):
                continue
            pods = str(next(net16.subnets(new_prefix=net16.prefixlen + 1)))
            created = self.client.networks.create(
                name,
                driver="bridge",
                labels={LABEL_CLUSTER: self.cluster},
                ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=candidate, iprange=pods)]),
            )
            self.net_id = created.id
            return candidate
        raise DockerUnavailable("no free 10.x.0.0/16 subnet for the cluster network")

    def on_stale_network(self, container: dict[str, Any]) -> bool:
        """Whether a container (a list entry or an inspection) is attached to an earlier network
        of the cluster's name: one removed (`docker network rm`) and created again since. Such
        a container can never start again (Docker answers 404 for the old network): it must be
        created anew."""
        networks = (container.get("NetworkSettings") or {}).get("Networks") or {}
        attached = (networks.get(self.network_name()) or {}).get("NetworkID")
        if not attached:
            return False
        if self.net_id is None:
            try:
                self.net_id = self.client.networks.get(self.network_name()).id
            except NotFound:
                return True
        return attached != self.net_id

    def remove_network(self) -> str | None:
        """Remove the cluster's network; the engine's reason when it refuses (after hundreds of
        containers dockerd can keep stale endpoints on an emptied network until it restarts)."""
        try:
            net = self.client.networks.get(self.network_name())
            if (net.attrs.get("Labels") or {}).get(LABEL_CLUSTER) == self.cluster:
                net.remove()
        except NotFound:
            pass
        except docker.errors.APIError as exc:
            return str(exc.explanation or exc)
        return None

    # -- containers ------------------------------------------------------------------------

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        """Every container of this cluster (running or not) matching the labels, as the raw
        list entries of the Docker API (Id, Names, Labels, State, Status, Created)."""
        filters = [f"{LABEL_CLUSTER}={self.cluster}"] + [f"{LABEL_PREFIX}{k}={v}" for k, v in labels.items()]
        return self.api.containers(all=True, filters={"label": filters})

    def inspect(self, ident: str) -> dict[str, Any] | None:
        try:
            return self.api.inspect_container(ident)
        except NotFound:
            return None

    def create(self, spec: ContainerSpec) -> str:
        labels = {LABEL_CLUSTER: self.cluster, **spec.labels}
        port_bindings = {p: (hip, hport) for p, (hip, hport) in spec.ports.items()}
        host_config = self.api.create_host_config(
            network_mode=spec.network_mode or spec.network,
            port_bindings=port_bindings or None,
            mem_limit=spec.mem_limit,
            nano_cpus=spec.nano_cpus,
            binds=spec.binds or None,
            dns_search=spec.dns_search or None,
            dns_opt=spec.dns_opt or None,
            init=False,
            group_add=spec.group_add or None,
            read_only=spec.read_only or None,
            cap_add=spec.cap_add or None,
            cap_drop=spec.cap_drop or None,
            privileged=spec.privileged,
            security_opt=spec.security_opt or None,
            pid_mode=spec.pid_mode,
        )
        networking = None
        if spec.network and not spec.network_mode:
            endpoint = self.api.create_endpoint_config(aliases=spec.aliases or None, ipv4_address=spec.ip)
            networking = self.api.create_networking_config({spec.network: endpoint})
        try:
            return self._create(spec, labels, host_config, networking)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
        # A container of that name survived an interrupted sync: replace it.
        self.remove(spec.name)
        return self._create(spec, labels, host_config, networking)

    def _create(self, spec: ContainerSpec, labels: dict[str, str], host_config: Any, networking: Any) -> str:
        created = self.api.create_container(
            image=spec.image,
            command=spec.command,
            entrypoint=spec.entrypoint,
            name=spec.name,
            hostname=spec.hostname if not spec.network_mode else None,
            environment=spec.env or None,
            labels=labels,
            working_dir=spec.working_dir,
            ports=[tuple(p.split("/")) for p in spec.ports] or None,
            host_config=host_config,
            networking_config=networking,
            stop_signal=spec.stop_signal,
            tty=spec.tty,
            stdin_open=spec.stdin_open,
            user=spec.user,
            stop_timeout=spec.stop_timeout,
        )
        return created["Id"]

    def create_supervised(self, spec: SupervisedContainer) -> str:
        """Create a container that the engine restarts by its restart policy (see
        `SupervisedContainer`); an existing container of that name is replaced."""
        host_config = self.api.create_host_config(
            network_mode=spec.network_mode,
            pid_mode=spec.pid_mode,
            binds=spec.binds,
            restart_policy={"Name": spec.restart_policy},
            group_add=spec.group_add or None,
            init=False,
        )
        self.remove(spec.name)
        created = self.api.create_container(
            image=spec.image,
            command=spec.command,
            name=spec.name,
            environment=spec.env,
            labels={LABEL_CLUSTER: self.cluster, **spec.labels},
            host_config=host_config,
            user=spec.user,
            stop_timeout=spec.stop_timeout,
        )
        return created["Id"]

    def start(self, ident: str) -> None:
        self.api.start(ident)

    def stop(self, ident: str, timeout: int) -> None:
        try:
            self.api.stop(ident, timeout=timeout)
        except NotFound:
            pass

    def remove(self, ident: str) -> None:
        try:
            self.api.remove_container(ident, force=True, v=True)
        except NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise

    def set_aliases(self, ident: str, network: str, aliases: list[str]) -> None:
        """Give a running container other DNS aliases on a network, keeping its address."""
        info = self.api.inspect_container(ident)
        ip = info["NetworkSettings"]["Networks"][network]["IPAddress"]
        self.api.disconnect_container_from_network(ident, network)
        self.api.connect_container_to_network(ident, network, ipv4_address=ip, aliases=aliases or None)

    def logs(self, ident: str, follow: bool, tail: int | None, timestamps: bool) -> Iterator[bytes]:
        return self.api.logs(
            ident, stream=True, follow=follow, tail=tail if tail is not None else "all", timestamps=timestamps
        )

    def stats(self, ident: str) -> dict[str, Any] | None:
        """One sample of a container's CPU and memory figures (slow: about a second)."""
        try:
            return self.api.stats(ident, stream=False, one_shot=True)
        except NotFound:
            return None

    def signal(self, ident: str, signal: str) -> None:
        """Send a signal to a container's main process (NGINX reloads on SIGHUP)."""
        self.api.kill(ident, signal)

    def exec(self, ident: str, command: list[str], tty: bool = False) -> tuple[int, bytes]:
        exec_id = self.api.exec_create(ident, command, tty=tty)["Id"]
        output = self.api.exec_start(exec_id)
        code = self.api.exec_inspect(exec_id).get("ExitCode")
        return (code if code is not None else -1), output

    def exec_stream(self, ident: str, command: list[str], stdin: bool, tty: bool) -> ContainerStream:
        """Start `command` in a running container with its streams on a hijacked socket."""
        exec_id = self.api.exec_create(ident, command, stdin=stdin, stdout=True, stderr=True, tty=tty)["Id"]
        sock = self.api.exec_start(exec_id, socket=True, tty=tty)
        return ContainerStream(
            _raw_socket(sock),
            multiplexed=not tty,
            resize=lambda width, height: self.api.exec_resize(exec_id, height=height, width=width),
            exit_code=lambda: self._exec_exit_code(exec_id),
        )

    def _exec_exit_code(self, exec_id: str) -> int | None:
        # The stream closes as the process ends; the engine may record the code a moment later.
        for _ in range(100):
            info = self.api.exec_inspect(exec_id)
            if not info.get("Running"):
                return info.get("ExitCode")
            time.sleep(0.05)
        return None

    def attach_stream(self, ident: str, stdin: bool, tty: bool) -> ContainerStream:
        """Attach to the main process of a running container (as `docker attach`)."""
        params = {"stdin": int(stdin), "stdout": 1, "stderr": 1, "stream": 1}
        sock = self.api.attach_socket(ident, params=params)
        return ContainerStream(
            _raw_socket(sock),
            multiplexed=not tty,
            resize=lambda width, height: self.api.resize(ident, height=height, width=width),
            exit_code=lambda: None,
        )

    def events(
        self,
        on_event: Callable[[dict[str, Any]], None],
        stop: threading.Event,
        on_reconnect: Callable[[], None] | None = None,
        connected: threading.Event | None = None,
    ) -> None:
        """Call `on_event` for each container event of this cluster until `stop` is set;
        `connected` is set once the stream is open.

        The stream ends when the engine stops or restarts (its containers stopped with it, and
        events may have been missed): it is opened again, and `on_reconnect` is called once it
        is, so that the caller can look at everything afresh."""
        first = True
        while not stop.is_set():
            try:
                # From a second back: the engine answers before it subscribes the stream, and an
                # event of that instant is replayed rather than lost (a repeat only syncs again).
                stream = self.api.events(
                    since=int(time.time()) - 1,
                    decode=True,
                    filters={"type": "container", "label": f"{LABEL_CLUSTER}={self.cluster}"},
                )
                if connected is not None:
                    connected.set()
                if not first and on_reconnect is not None:
                    log.info("docker event stream is back; resyncing")
                    on_reconnect()
                first = False
                for event in stream:
                    if stop.is_set():
                        stream.close()
                        return
                    on_event(event)
                log.warning("docker event stream ended; reconnecting")
            except Exception as exc:  # noqa: BLE001 - the engine may restart; keep listening
                if first:
                    first = False  # what the caller saw before the first stream may be stale too
                log.warning("docker event stream broke (%s); reconnecting", exc.__class__.__name__)
            stop.wait(1)

    # -- images ----------------------------------------------------------------------------

    def image(self, ref: str) -> dict[str, Any] | None:
        try:
            info = self.api.inspect_image(ref)
        except ImageNotFound:
            return None
        except docker.errors.APIError:
            return None
        self._images[ref] = (time.monotonic(), info)
        return info

    def image_recent(self, ref: str, max_age: float = IMAGE_MAX_AGE) -> dict[str, Any] | None:
        """`image`, answered from an inspection at most `max_age` seconds old when there is
        one: a pod's sync asked three times per pod for the same two images. Only images
        found are remembered (one just loaded is seen at once); one removed since makes the
        container's create fail, which the sync reports and retries."""
        seen = self._images.get(ref)
        if seen is not None and time.monotonic() - seen[0] <= max_age:
            return seen[1]
        return self.image(ref)

    def pull(self, ref: str) -> dict[str, Any]:
        repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
        self.api.pull(repo, tag=tag or "latest")
        image = self.image(ref if ":" in ref.rsplit("/", 1)[-1] else f"{ref}:latest")
        if image is None:
            raise docker.errors.ImageNotFound(f"{ref} not found after pull")
        return image

    def images(self, label: str | None = None) -> list[dict[str, Any]]:
        return self.api.images(filters={"label": label} if label else None)

    def remove_unused_image(self, ref: str) -> bool:
        """Remove an image unless a container (running or not) uses it; whether it was removed."""
        self._images.pop(ref, None)
        try:
            self.api.remove_image(ref)
            return True
        except docker.errors.APIError:
            return False

    def load(self, data: bytes) -> list[str]:
        """Load a `docker save` archive; return the names it held, as `docker load` says them."""
        names = []
        for message in self.api.load_image(data):
            text = str(message.get("stream", "")).strip()
            for prefix in ("Loaded image: ", "Loaded image ID: "):
                if text.startswith(prefix):
                    names.append(text[len(prefix) :])
        return names

    def build(self, context: bytes, tag: str, labels: dict[str, str] | None = None) -> None:
        output: list[str] = []
        for message in self.api.build(
            fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True, labels=labels, decode=True
        ):
            output.append(str(message.get("stream") or message.get("error") or ""))
        if self.image(tag) is None:
            tail = "".join(output).strip().splitlines()[-6:]
            raise docker.errors.BuildError(f"building {tag} failed: " + " / ".join(tail), [])

    def import_image(self, stream: Any, tag: str, changes: list[str]) -> None:
        repo, _, version = tag.rpartition(":")
        self.api.import_image_from_stream(stream, repository=repo, tag=version, changes=changes)

    # -- volumes ---------------------------------------------------------------------------

    def ensure_volume(self, name: str, labels: dict[str, str]) -> str:
        try:
            self.client.volumes.get(name)
        except NotFound:
            self.client.volumes.create(name, labels={LABEL_CLUSTER: self.cluster, **labels})
        return name

    def volumes(self, **labels: str) -> list[Any]:
        """This cluster's volumes matching the labels (as `containers`)."""
        filters = [f"{LABEL_CLUSTER}={self.cluster}"] + [f"{LABEL_PREFIX}{k}={v}" for k, v in labels.items()]
        return self.client.volumes.list(filters={"label": filters})


def _raw_socket(sock: Any) -> socket.socket:
    """The plain socket under what docker's `socket=True` calls answer (a SocketIO on Unix)."""
    return getattr(sock, "_sock", sock)


class Demuxer:
    """Docker's multiplexed stream (8-byte header: stream type, 3 zero bytes, big-endian size)
    split into (stream, bytes) pieces; stream 1 is stdout, 2 stderr. Fed in any chunking."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        out = []
        while len(self.buffer) >= 8:
            size = int.from_bytes(self.buffer[4:8], "big")
            if len(self.buffer) < 8 + size:
                break
            kind = self.buffer[0]
            out.append((2 if kind == 2 else 1, self.buffer[8 : 8 + size]))
            self.buffer = self.buffer[8 + size :]
        return out


class ContainerStream:
    """A process's stdin/stdout/stderr on a socket Docker hijacked for an exec or an attach."""

    def __init__(
        self,
        sock: socket.socket,
        multiplexed: bool,
        resize: Callable[[int, int], Any],
        exit_code: Callable[[], int | None],
    ) -> None:
        self.sock = sock
        self.multiplexed = multiplexed
        self._resize = resize
        self._exit_code = exit_code
        self._demuxer = Demuxer()

    def read(self) -> list[tuple[int, bytes]] | None:
        """The next output pieces as (1 stdout | 2 stderr, bytes); None once the process is done."""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                return None
            pieces = self._demuxer.feed(data) if self.multiplexed else [(1, data)]
            if pieces:
                return pieces

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_stdin(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def resize(self, width: int, height: int) -> None:
        try:
            self._resize(width, height)
        except DockerError as exc:
            log.debug("resize failed: %s", exc)

    def exit_code(self) -> int | None:
        try:
            return self._exit_code()
        except DockerError:
            return None

    def close(self) -> None:
        """End both directions (waking a reader in another thread), then release the socket."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def host_port_free(ip: str, port: int) -> bool:
    """Whether a TCP port can be bound on the host (checked before publishing it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
            return True
        except OSError:
            return False
