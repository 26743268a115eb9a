"""The control plane process: store, API server, controllers, pod runtime and proxies.

`mikro start` runs it in a container the Docker engine supervises (see `mikro.lifecycle`;
`python -m mikro.controlplane --log FILE` is that container's command), or, with
`--no-autostart`, forks it into a session of its own (`python -m mikro.controlplane` runs it in
the foreground, for debugging). SIGTERM (`mikro stop`) stops every container of the cluster,
then the process. State stays in the state directory.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import platform
import secrets
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

from mikro import config
from mikro.config import LABEL_PREFIX
from mikro.errors import ApiError, StateDirError
from mikro.node import prestart

if TYPE_CHECKING:
    from mikro.api.registry import Registry

# The rest of mikro is imported by `main`, after it has set the cluster's stopped containers
# starting (see mikro.node.prestart): the imports take about a second of CPU.

log = logging.getLogger("mikro.controlplane")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def free_port(preferred: int | None) -> int:
    for port in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return sock.getsockname()[1]
            except OSError:
                continue
    raise RuntimeError("no free port")


def node_arch() -> str:
    """The host's architecture in Go's words (the `kubernetes.io/arch` label)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def bootstrap(registry: Registry, cluster: str, node_name: str, host_ip: str) -> None:
    """Objects every cluster has: system namespaces, the node, the addons' ConfigMap."""
    from mikro.api import storage
    from mikro.api.resources import BY_KIND
    from mikro.net.network import ADDONS_CM, ADDONS_NS

    store = registry.store
    for ns in SYSTEM_NAMESPACES:
        if store.find(BY_KIND["Namespace"], "", ns) is None:
            registry.create(BY_KIND["Namespace"], "", {"metadata": {"name": ns}})
    if store.find(BY_KIND["StorageClass"], "", storage.DEFAULT_CLASS) is None:
        registry.create(BY_KIND["StorageClass"], "", storage.default_class())
    if store.find(BY_KIND["ConfigMap"], ADDONS_NS, ADDONS_CM) is None:
        registry.create(BY_KIND["ConfigMap"], ADDONS_NS, {"metadata": {"name": ADDONS_CM}, "data": {}})
    cpu = str(os.cpu_count() or 1)
    memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 1024}Ki"  # for kubectl top's MEMORY%
    node = {
        "metadata": {
            "name": node_name,
            "labels": {
                "kubernetes.io/hostname": node_name,
                "kubernetes.io/os": "linux",
                "node-role.kubernetes.io/control-plane": "",
                "kubernetes.io/arch": node_arch(),
            },
        },
        "spec": {},
    }
    if store.find(BY_KIND["Node"], "", node_name) is None:
        node = registry.create(BY_KIND["Node"], "", node)
    else:
        wanted = node["metadata"]["labels"]
        node = store.get(BY_KIND["Node"], "", node_name)
        labels = node["metadata"].setdefault("labels", {})
        if any(k not in labels for k in wanted):  # a cluster made by an older mikro
            node["metadata"]["labels"] = {**wanted, **labels}
            node = store.update(BY_KIND["Node"], node)
    node["status"] = {
        "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
        "addresses": [{"type": "InternalIP", "address": host_ip}, {"type": "Hostname", "address": node_name}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "mikro is running"}],
        "nodeInfo": {
            "kubeletVersion": "v1.32.0",
            "containerRuntimeVersion": "docker",
            "operatingSystem": "linux",
            "architecture": node_arch(),
        },
    }
    store.update(BY_KIND["Node"], node, status_only=True)


def redirect_output(log_path: str) -> None:
    """In the control plane's container: stdout and stderr go to controlplane.log, as a
    forked control plane's do."""
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def bound_malloc() -> None:
    """Give freed memory back to the system. glibc raises its mmap threshold after a large
    buffer is freed, so later large buffers (request bodies, objects of a MiB) land in heap
    arenas it seldom returns, one arena per thread: after a burst of large writes the process
    kept ~290 MB. A fixed threshold and two arenas keep it near its working set."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD: large buffers are mmapped, and unmapped on free
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


def without_charset_guessing() -> None:
    """Keep requests' charset guesser (charset_normalizer, or chardet) out of this process. It
    serves `Response.text` of pages that do not name their encoding; the Docker SDK reads the
    engine's JSON, UTF-8 by definition, and requests then falls back to UTF-8 itself. Importing
    it loads a compiled module and probes every codec: 3.8 MB of memory and 0.05 s of each
    start in the control plane's container."""
    import warnings

    for name in ("charset_normalizer", "chardet"):
        sys.modules.setdefault(name, None)  # type: ignore[assignment] - import raises ImportError
    warnings.filterwarnings("ignore", message="Unable to find acceptable character detection")


def main() -> int:
    bound_malloc()
    without_charset_guessing()
    try:
        paths = config.ensure_state_dir()
    except StateDirError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)  # `mikro start` shows this line
        return 2
    logging.basicConfig(
        level=os.environ.get("MIKRO_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.info("starting")
    prestarting = prestart.begin(paths.root)

    from mikro import addonstate
    from mikro.api import incluster, pki, tokens
    from mikro.api.registry import Registry
    from mikro.api.server import serve
    from mikro.api.store import Store
    from mikro.controllers.hpa import HPAController
    from mikro.controllers.manager import Controllers
    from mikro.net.dashboard import DASHBOARD_ADDON, DashboardAddon
    from mikro.net.network import Network
    from mikro.node.docker_backend import Docker, DockerUnavailable
    from mikro.node.images import INFRA_IMAGE, NGINX_IMAGE
    from mikro.node.metrics import METRICS_ADDON, MetricsSampler
    from mikro.node.podplan import PodContext
    from mikro.node.runtime import PodRuntime

    cluster = config.cluster_name()
    settings = config.load_settings(paths)
    settings.setdefault("token", secrets.token_urlsafe(32))
    settings.setdefault("bind_address", "127.0.0.1")
    try:
        docker = Docker(cluster)
    except DockerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)  # `mikro start` shows this line
        return 3
    subnet = ipaddress.ip_network(docker.ensure_network(settings.get("subnet")))
    settings["subnet"] = str(subnet)
    halves = list(subnet.subnets(new_prefix=subnet.prefixlen + 1))
    host_ip = str(next(subnet.hosts()))
    settings["port"] = free_port(settings.get("port"))
    config.save_settings(paths, settings)

    store = Store(paths.db)
    node_name = cluster
    registry = Registry(store, str(halves[1]), node_name)
    bootstrap(registry, cluster, node_name, host_ip)
    ctx = PodContext(
        cluster=cluster,
        network=docker.network_name(),
        infra_image=INFRA_IMAGE,
        node_name=node_name,
        host_ip=host_ip,
        state_dir=str(paths.root),
    )
    runtime = PodRuntime(registry, docker, ctx)
    ca, cert, key = pki.ensure(paths.pki, (incluster.cluster_ip(str(halves[1])), host_ip))
    server = serve(registry, settings["token"], runtime, settings["port"], (str(cert), str(key)))
    server.issuer = tokens.Issuer.load_or_create(paths.pki / "sa.key")  # tokens outlive a restart
    incluster.wire(registry, runtime, server, str(halves[1]), host_ip, ca.read_text())
    network = Network(registry, docker, paths, cluster, docker.network_name(), NGINX_IMAGE, settings["bind_address"])
    runtime.wait_unrouted = network.wait_unrouted
    controllers = Controllers(registry)
    metrics = MetricsSampler(docker, node_name, lambda: addonstate.read(store).get(METRICS_ADDON) == "enabled")
    metrics.on_first_sample = lambda: addonstate.set_values(store, {f"{METRICS_ADDON}.status": "running"})
    dashboard = DashboardAddon(
        lambda: addonstate.read(store),
        lambda name, status: addonstate.set_values(store, {f"{name}.status": status}),
        lambda port: addonstate.set_values(store, {f"{DASHBOARD_ADDON}.port": str(port)}),
        settings["port"],
        str(ca),
    )
    server.metrics = metrics
    autoscaler = HPAController(registry, lambda ns, _: {m["metadata"]["name"]: m for m in metrics.list_pods(ns)})

    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    endpoint = {
        "port": settings["port"],
        "token": settings["token"],
        "pid": os.getpid(),
        "cluster": cluster,
        # set in the Docker-supervised container (see mikro.lifecycle): it starts at boot
        "container": os.environ.get("MIKRO_CONTAINER") or None,
        # `mikro start` asks /readyz once this is true, not in a loop while pods start
        "ready": False,
    }
    config.write_private(paths.endpoint, json.dumps(endpoint))
    if prestarting is not None:
        prestarting.join()  # the runtime and the network then find those containers running
    network.start()
    runtime.start()
    controllers.start()
    metrics.start()
    autoscaler.start()
    dashboard.start()
    threading.Thread(
        target=docker.events, args=(network.on_docker_event, stopping, network.on_engine_back), daemon=True
    ).start()
    server.ready.set()
    config.write_private(paths.endpoint, json.dumps({**endpoint, "ready": True}))
    log.info("mikro %s is ready on 127.0.0.1:%d", cluster, settings["port"])
    # The signing key (and PyJWT, cryptography) was left out of the boot: load it now, before
    # the first pod's ServiceAccount token needs it.
    threading.Thread(target=server.issuer.load_now, name="issuer", daemon=True).start()
    stopping.wait()

    log.info("stopping: pods (the proxies once their apps have stopped), then the API")
    server.ready.clear()
    controllers.stop.set()
    try:
        running = prestart.plan(docker.containers(), LABEL_PREFIX)
    except Exception:  # noqa: BLE001 - only a head start for the next start
        running = None
    # The Services' proxies (and the ingress) run until the last app container has stopped: an
    # app may call the API or another Service while it ends. Not until the pods' network
    # namespaces are gone too: nothing runs in them any more.
    runtime.shutdown(after_apps=network.shutdown)
    if running is not None:
        prestart.record(paths.root, running)
    server.stopping.set()
    server.shutdown()
    try:
        paths.endpoint.unlink()
    except FileNotFoundError:
        pass
    registry.events.flush(timeout=2.0)  # (the pods' Killing events, written in the background)
    store.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--log"] and len(sys.argv) == 3:
        redirect_output(sys.argv[2])
    try:
        code = main()
    except ApiError as err:
        logging.getLogger("mikro").error("%s", err.message)
        code = 1
    # Everything is stopped, stored and closed: exit without the interpreter's teardown.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
