"""The kube-proxy and ingress parts: one NGINX proxy container per Service, carrying the
Service's ClusterIP and DNS names, and the ingress addon's NGINX on host ports 80/443.

Configuration is rendered (see `ingress`), written under the state directory, checked with
`nginx -t` and reloaded in place only when it changed.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mikro.api import pki
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import Change, now_rfc3339
from mikro.config import LABEL_PREFIX, Paths, write_private
from mikro.errors import ApiError
from mikro.net import ingress as ingress_model
from mikro.net import nginxproc, routing
from mikro.node.docker_backend import Docker, DockerError, host_port_free
from mikro.node.docker_types import ContainerSpec
from mikro.node.podplan import INFRA, dns_aliases, headless_aliases, headless_key, spec_hash

log = logging.getLogger("mikro.network")
L = LABEL_PREFIX
SVC, EP, ING, POD = BY_KIND["Service"], BY_KIND["Endpoints"], BY_KIND["Ingress"], BY_KIND["Pod"]
SECRET, CM, IC = BY_KIND["Secret"], BY_KIND["ConfigMap"], BY_KIND["IngressClass"]
ADDONS_NS, ADDONS_CM = "kube-system", "mikro-addons"
# NGINX never runs an unchecked configuration. `nginx.conf` is the last good one; mikro writes
# each new candidate to `nginx.conf.next`. A starting container promotes the candidate only if
# `nginx -t` accepts it, and otherwise runs the last good one; a running one is reloaded only
# after the same check (RELOAD_IF_VALID).
PROMOTE_IF_VALID = (
    "if [ -f /etc/mikro/nginx.conf.next ] && nginx -q -t -c /etc/mikro/nginx.conf.next; "
    "then mv /etc/mikro/nginx.conf.next /etc/mikro/nginx.conf; fi"
)
# A starting container makes itself known on the cluster's network (one datagram to its
# gateway: the ARP request for the gateway carries its own address to every peer): a peer
# that tried to reach its address before the engine had wired it (a `curl` of port 80 right
# after `mikro start`) would otherwise wait for the kernel's next ARP probe, a second later.
ANNOUNCE = (
    'set -- $(ip -4 route show default 2>/dev/null); '
    '[ -z "$3" ] || { bash -c "echo > /dev/udp/$3/9" 2>/dev/null & }'
)
NGINX_COMMAND = [
    "sh",
    "-c",
    PROMOTE_IF_VALID + "; " + ANNOUNCE + "; exec nginx -c /etc/mikro/nginx.conf -g 'daemon off;'",
]
RELOAD_IF_VALID = (
    "[ ! -f /etc/mikro/nginx.conf.next ] || { nginx -q -t -c /etc/mikro/nginx.conf.next "
    "&& mv /etc/mikro/nginx.conf.next /etc/mikro/nginx.conf "
    "&& { [ ! -f /tmp/nginx.pid ] || nginx -c /etc/mikro/nginx.conf -s reload; }; }"
)
# A container that keeps exiting is started again at most this often.
RESTART_BACKOFF = 5.0
# The safety net of the headless aliases' look (Service changes and infra starts drive it).
HEADLESS_RESYNC_SECONDS = 300.0
# How long an NGINX master may take to run a new configuration (new workers) after SIGHUP or
# its start; longer, it refused the configuration (or cannot be seen) and the checked path runs.
SERVING_TIMEOUT = 2.0
# An address stands for every endpoint in a configuration's shape (see `_shape_*`).
SHAPE_ADDRESS = "192.0.2.1"
DEFAULT_CERT = ("/etc/ssl/mikro/default.crt", "/etc/ssl/mikro/default.key")


class Network:
    def __init__(
        self,
        registry: Registry,
        docker: Docker,
        paths: Paths,
        cluster: str,
        network: str,
        nginx_image: str,
        bind_address: str,
    ) -> None:
        self.reg = registry
        self.store = registry.store
        self.docker = docker
        self.paths = paths
        self.cluster = cluster
        self.network = network
        self.image = nginx_image
        self.bind = bind_address
        # Two loops: the service proxies, and the ingress on its own, so that a proxy
        # container being created (a second or two on a loaded machine) never holds back the
        # ingress taking a new endpoint, nor the other way round.
        self.wake = threading.Event()
        self.wake_ingress = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ingress_lock = threading.Lock()
        self.report_lock = threading.Lock()
        # (namespace, name, uid) of a pod -> the Routed condition last written for it
        self.reported_routed: dict[tuple[str, str, str], bool] = {}
        self.reported: set[tuple[str, str, str]] = set()
        # Secret uid -> (resourceVersion, its PEM pair or None when not a valid key pair)
        self.checked_secrets: dict[str, tuple[str, tuple[str, str] | None]] = {}
        self.aliases_set: dict[str, list[str]] = {}  # infra container id -> headless DNS names it carries
        # The headless Services the last look at the pods' aliases saw, and whether an infra
        # container started since (Docker events): with neither changed, no look (a list of
        # every pod's containers every 10 s), except every HEADLESS_RESYNC_SECONDS.
        self.headless_seen: tuple[Any, ...] | None = None
        self.infra_started = True
        self.headless_looked = 0.0
        # Pod addresses in the configurations NGINX runs now, by configuration ("ingress",
        # "ns/service"): a terminating pod is stopped only once no proxy sends it traffic.
        self.routed: dict[str, set[str]] = {}
        # The ingress was signalled a newer configuration before NGINX's workers of the one
        # before all ran it (a change came during the wait, and the pass signalled again rather
        # than wait NGINX's 100 ms out): the master and its accepting workers at that signal, to
        # wait out before what it routes counts as routed; meanwhile the addresses either
        # configuration sends to (a terminating pod stays up for them).
        self.ingress_pending: tuple[int, set[int]] | None = None
        self.unsettled: set[str] = set()
        # The shape (the configuration with every endpoint the same) of the configuration each
        # NGINX runs: a change of endpoints alone keeps the shape, so NGINX accepts it and a
        # SIGHUP applies it without `nginx -t` (see `_hup`).
        self.ingress_services: set[str] | None = None  # what the ingress routes to; None: no ingress
        self.shapes: dict[str, str] = {}
        self.masters: dict[str, int] = {}  # container id -> host PID of its NGINX master
        # The ingress container as last listed running; any Docker event about it drops it.
        # An endpoints change then reaches NGINX with no Docker call at all.
        self.ingress_seen: dict[str, Any] | None = None
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="proxysync")
        # Ingresses NGINX refused: uid -> (resourceVersion, why); left out until they change.
        self.denied: dict[str, tuple[str, str]] = {}
        self.refused: dict[str, str] = {}  # configuration name -> the candidate NGINX refused
        self.restarted: dict[str, float] = {}  # container name -> monotonic time of the last start

    def start(self) -> None:
        kinds = {"Service", "Endpoints", "Ingress", "Secret", "ConfigMap", "IngressClass"}

        def on_change(change: Change) -> bool:
            if change.resource.kind in kinds:
                # (of the ConfigMaps only the addons' one matters here: not a pass per write of others)
                if change.resource.kind != "ConfigMap" or change.meta[:2] == (ADDONS_NS, ADDONS_CM):
                    self.wake_all()
            return False

        self.store.watch(on_change)
        self.wake_all()  # a first pass at once: the proxies and the ingress that ran before come back
        threading.Thread(
            target=self._loop, args=(self.wake, self.sync_proxies, 0.02), name="network", daemon=True
        ).start()
        # The ingress pass is cheap when nothing changed (a few reads and one rendering): it
        # gathers a burst of writes for less time, as a pod's readiness is on its way to port 80.
        threading.Thread(
            target=self._loop,
            args=(self.wake_ingress, self.sync_ingress_pass, 0.005),
            name="network-ingress",
            daemon=True,
        ).start()

    def wake_all(self) -> None:
        self.wake.set()
        self.wake_ingress.set()

    def _loop(self, wake: threading.Event, sync: Callable[[], None], debounce: float) -> None:
        while not self.stop.is_set():
            wake.wait(10.0)  # changes wake it at once; this only catches missed ones
            wake.clear()
            if self.stop.wait(debounce):
                return
            try:
                sync()
            except Exception:  # noqa: BLE001 - keep serving; the next pass retries
                log.exception("network sync failed")

    def is_routed(self, ip: str) -> bool:
        return ip in self.unsettled or any(ip in ips for ips in list(self.routed.values()))

    def wait_unrouted(self, ip: str, timeout: float) -> None:
        """Block until no running proxy configuration sends traffic to `ip` (or timeout)."""
        deadline = time.monotonic() + timeout
        while self.is_routed(ip) and time.monotonic() < deadline:
            time.sleep(0.02)

    def on_docker_event(self, event: dict[str, Any]) -> None:
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        if attrs.get(L + "kind") == "ingress":
            self.ingress_seen = None
        if attrs.get(L + "kind") in ("proxy", "ingress") and event.get("status") in ("die", "destroy"):
            self.wake_all()
        if attrs.get(L + "container") == INFRA and event.get("status") == "start":
            self.infra_started = True

    def on_engine_back(self) -> None:
        """The Docker engine restarted: its containers were stopped, not crashed."""
        self.restarted.clear()
        self.infra_started = True
        self.ingress_seen = None
        self.wake_all()

    # -- addons state ----------------------------------------------------------------------

    def addons(self) -> dict[str, str]:
        cm = self.store.find(CM, ADDONS_NS, ADDONS_CM)
        return dict((cm or {}).get("data") or {})

    def _set_addon_status(self, name: str, status: str) -> None:
        cm = self.store.find(CM, ADDONS_NS, ADDONS_CM)
        if cm is None:
            return
        data = cm.setdefault("data", {})
        if data.get(f"{name}.status") != status:
            data[f"{name}.status"] = status
            cm["metadata"].pop("resourceVersion", None)
            self.store.update(CM, cm)

    # -- passes ----------------------------------------------------------------------------

    def sync(self) -> None:
        """One pass of both loops."""
        self.sync_proxies()
        self.sync_ingress_pass()

    def sync_ingress_pass(self) -> None:
        with self.ingress_lock:
            addons = self.addons()
            if addons.get("ingress") != "enabled":
                self.ingress_seen = None
                for c in self.docker.containers(kind="ingress"):
                    self.docker.remove(c["Id"])
                self.routed.pop("ingress", None)
                self._settled()
                self.ingress_services = None
                return
            services = self.store.list(SVC)[0]
            endpoints = self.store.list(EP)[0]
            try:
                self.sync_ingress(services, endpoints, addons)
            except DockerError as exc:
                log.warning("ingress: %s", exc)
            self.report_routed(endpoints, services)

    def sync_proxies(self) -> None:
        with self.lock:
            services = self.store.list(SVC)[0]
            endpoint_list = self.store.list(EP)[0]
            endpoints = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoint_list}
            proxies = {c["Names"][0].lstrip("/"): c for c in self.docker.containers(kind="proxy")}
            jobs: list[tuple[str, Any, tuple[Any, ...]]] = []
            wanted = set()
            for svc in services:
                spec = svc.get("spec") or {}
                if spec.get("clusterIP") in (None, "", "None") or spec.get("type") == "ExternalName":
                    continue
                key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
                wanted.add(self._proxy_name(*key))
                jobs.append(
                    ("/".join(key), self.sync_proxy, (svc, endpoints.get(key), proxies.get(self._proxy_name(*key))))
                )
            # Each proxy is a Docker round trip or three: do them side by side, so that one
            # change reaches every proxy at once.
            for name, future in [(name, self.pool.submit(fn, *args)) for name, fn, args in jobs]:
                try:
                    future.result()
                except DockerError as exc:
                    log.warning("%s: %s", name, exc)
            for name, c in proxies.items():
                if name not in wanted:
                    self.docker.remove(c["Id"])
            for key in [k for k in self.routed if k != "ingress" and self._proxy_name(*k.split("/")) not in wanted]:
                del self.routed[key]
            self.report_routed(endpoint_list, services)
            self.sync_headless(services)

    def report_routed(self, endpoints: list[dict[str, Any]], services: list[dict[str, Any]]) -> None:
        """Write each pod's `io.mikro/Routed` condition where it changed (routing.py); a pod
        whose condition this process wrote already costs no read."""
        with self.report_lock:
            now = now_rfc3339()
            carried = routing.carriers(services, self.ingress_services)
            routed = routing.pods_routed(endpoints, carried, dict(self.routed))
            for key, ok in routed.items():
                if self.reported_routed.get(key) == ok:
                    continue
                ns, name, uid = key
                for _ in range(3):  # a conflict is the kubelet writing the pod's status: read again
                    pod = self.store.find(POD, ns, name)
                    if pod is None or (uid and pod["metadata"].get("uid") != uid):
                        break
                    status = routing.with_condition(pod, ok, now)
                    if status is not None:
                        pod["status"] = status
                        try:
                            self.store.update(POD, pod, status_only=True)
                        except ApiError as err:
                            if err.code == 409:
                                continue
                            break
                    self.reported_routed[key] = ok
                    break
            for key in [k for k in self.reported_routed if k not in routed]:
                del self.reported_routed[key]

    def sync_headless(self, services: list[dict[str, Any]]) -> None:
        """Headless Services resolve to their pods: each selected pod's infra container
        carries the Service's DNS names as network aliases (changed by reconnecting it)."""
        key, now = headless_key(services), time.monotonic()
        if key == self.headless_seen and not self.infra_started and now - self.headless_looked < HEADLESS_RESYNC_SECONDS:
            return
        self.headless_seen, self.infra_started, self.headless_looked = None, False, now
        if not key and not any(self.aliases_set.values()):
            self.headless_seen = key
            return  # no headless Service, no alias set: no pod's aliases can need a change
        prefix, failed = L + "label.", False
        for c in self.docker.containers(kind="pod", container=INFRA):
            if c["State"] != "running":
                continue
            labels = {k[len(prefix) :]: v for k, v in c["Labels"].items() if k.startswith(prefix)}
            want = headless_aliases(
                c["Labels"].get(L + "namespace", ""),
                labels,
                services,
                c["Labels"].get(L + "hostname"),
                c["Labels"].get(L + "subdomain"),
            )
            have = self.aliases_set.get(c["Id"])
            if have is None:
                if not want:
                    continue
                info = self.docker.inspect(c["Id"]) or {}
                net = ((info.get("NetworkSettings") or {}).get("Networks") or {}).get(self.network) or {}
                have = sorted(
                    a
                    for a in net.get("Aliases") or []
                    if a.endswith(".svc.cluster.local") or a.endswith(".svc") or a.count(".") in (1, 2)
                )
            if sorted(have) != want:
                try:
                    self.docker.set_aliases(c["Id"], self.network, want)
                except DockerError as exc:
                    log.warning("headless aliases of %s: %s", c["Names"][0], exc)
                    failed = True  # looked at again on the next pass
                    continue
            self.aliases_set[c["Id"]] = want
        self.headless_seen = None if failed else key

    def _proxy_name(self, ns: str, name: str) -> str:
        return f"{self.cluster}_svc_{ns}_{name}"

    def _event_once(self, obj: dict[str, Any], reason: str, message: str) -> None:
        key = (obj["metadata"].get("uid", ""), reason, message)
        if key not in self.reported:
            self.reported.add(key)
            self.reg.record_event(obj, reason, message, "Warning", "mikro-network")

    def _write_if_changed(self, path: Path, text: str, mode: int = 0o644) -> bool:
        try:
            if path.read_text() == text:
                return False
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, text)
        os.chmod(path, mode)
        return True

    def _stage(self, directory: Path, baseline: str, text: str) -> bool:
        """Write a candidate configuration beside the last good one; whether it differs from it.
        A directory without a configuration gets `baseline` (no user values) as its last good
        one, so that a new container always has a configuration to fall back to."""
        conf = directory / "nginx.conf"
        if not conf.exists():
            self._write_if_changed(conf, baseline)
        if conf.read_text() == text:
            (directory / "nginx.conf.next").unlink(missing_ok=True)
            return False
        self._write_if_changed(directory / "nginx.conf.next", text)
        return True

    def _may_restart(self, name: str) -> bool:
        """Start an exited container again, at most every RESTART_BACKOFF seconds."""
        now = time.monotonic()
        if now - self.restarted.get(name, -RESTART_BACKOFF) < RESTART_BACKOFF:
            self.wake_later(RESTART_BACKOFF)
            return False
        self.restarted[name] = now
        return True

    def wake_later(self, delay: float) -> None:
        timer = threading.Timer(delay, self.wake_all)
        timer.daemon = True
        timer.start()

    def sync_proxy(self, svc: dict[str, Any], endpoints: dict[str, Any] | None, current: dict[str, Any] | None) -> None:
        meta, spec = svc["metadata"], svc["spec"]
        ns, name = meta["namespace"], meta["name"]
        ports = []
        for p in spec.get("ports") or []:
            addrs, _ = ingress_model.endpoints_for(svc, endpoints, {"number": p["port"]})
            ports.append({"port": p["port"], "protocol": p.get("protocol", "TCP"), "endpoints": addrs or []})
        directory = self.paths.proxies / f"{ns}_{name}"
        text = ingress_model.render_service_proxy(ns, name, ports)
        conf = f"{ns}/{name}"
        addresses = {ep.rsplit(":", 1)[0] for p in ports for ep in p["endpoints"]}
        shape = ingress_model.render_service_proxy(
            ns, name, [{**p, "endpoints": [f"{SHAPE_ADDRESS}:1"]} for p in ports]
        )
        fast = all(_plain_endpoint(ep) for p in ports for ep in p["endpoints"])
        changed = self._stage(directory, ingress_model.render_service_proxy(ns, name, []), text)
        published: dict[str, tuple[str, int]] = {}
        for p in spec.get("ports") or []:
            proto = p.get("protocol", "TCP").lower()
            if spec.get("type") == "NodePort" and p.get("nodePort"):
                published[f"{p['port']}/{proto}"] = (self.bind, int(p["nodePort"]))
            elif spec.get("type") == "LoadBalancer":
                published[f"{p['port']}/{proto}"] = (self.bind, int(p["port"]))
        cspec = ContainerSpec(
            name=self._proxy_name(ns, name),
            image=self.image,
            labels={L + "kind": "proxy", L + "namespace": ns, L + "name": name, L + "uid": meta["uid"]},
            command=NGINX_COMMAND,
            network=self.network,
            ip=spec["clusterIP"],
            aliases=dns_aliases(name, ns),
            ports=published,
            binds={str(directory): {"bind": "/etc/mikro", "mode": "rw"}},
            stop_timeout=1,
        )
        cspec.labels[L + "spec-hash"] = spec_hash(cspec)
        if current is not None and (
            current["Labels"].get(L + "spec-hash") != cspec.labels[L + "spec-hash"]
            or self.docker.on_stale_network(current)
        ):
            self.docker.remove(current["Id"])
            current = None
        if current is None:
            for key, (ip, port) in list(cspec.ports.items()):
                if not host_port_free(ip, port):
                    del cspec.ports[key]
                    self._event_once(
                        svc,
                        "PortInUse",
                        f"host port {ip}:{port} is already in use: service port {key} is not published on the host",
                    )
            ident = self.docker.create(cspec)
            self.docker.start(ident)
            self.shapes.pop(conf, None)
            if not self._started(ident, directory, text):
                self.wake_later(0.5)  # look again: it may only be slow to start
                return
        elif current["State"] != "running":
            self.shapes.pop(conf, None)
            if not self._may_restart(cspec.name):
                return
            self.docker.start(current["Id"])
            if not self._started(current["Id"], directory, text):
                self.wake_later(0.5)
                return
        elif changed and self.refused.get(conf) != text:
            if fast and self.shapes.get(conf) == shape and self._hup(current["Id"], directory, text):
                code, output = 0, b""
            else:
                code, output = self._reload_checked(current["Id"])
            if code != 0:
                self.refused[conf] = text
                self._event_once(
                    svc,
                    "ConfigError",
                    "the new NGINX configuration of the service proxy was refused and the previous one is kept: "
                    + _last_lines(output),
                )
                return
        elif changed:
            return  # refused before: the previous configuration still runs
        self.refused.pop(conf, None)
        self.shapes[conf] = shape
        self.routed[conf] = addresses
        if spec.get("type") == "LoadBalancer":
            lb = {"ingress": [{"ip": self.bind if self.bind != "0.0.0.0" else "127.0.0.1"}]}
            if (svc.get("status") or {}).get("loadBalancer") != lb:
                svc["status"] = {"loadBalancer": lb}
                self.store.update(SVC, svc, status_only=True)

    # -- reloads ---------------------------------------------------------------------------

    def _master(self, ident: str) -> int | None:
        """The host PID of a container's NGINX master, when this process can see it."""
        pid = self.masters.get(ident)
        if pid is not None and nginxproc.is_master(pid):
            return pid
        info = self.docker.inspect(ident) or {}
        pid = int((info.get("State") or {}).get("Pid") or 0)
        if not pid or not nginxproc.is_master(pid):
            return None
        self.masters[ident] = pid
        return pid

    def _started(self, ident: str, directory: Path, text: str) -> bool:
        """After a container's start: whether its NGINX serves `text` (it promoted the
        candidate). Unknown (no view of its processes) counts as yes, as the start did."""
        info = self.docker.inspect(ident) or {}
        pid = int((info.get("State") or {}).get("Pid") or 0)
        if not pid or not nginxproc.visible(pid):
            return True
        if not nginxproc.wait_started(pid, SERVING_TIMEOUT):
            return False
        self.masters[ident] = pid
        try:
            return (directory / "nginx.conf").read_text() == text
        except OSError:
            return False

    def _hup(
        self, ident: str, directory: Path, text: str, interrupt: Callable[[], bool] | None = None
    ) -> bool | None:
        """Run `text` by SIGHUP, with no `nginx -t` (a Docker exec costs 100-200 ms): only for a
        configuration of the shape NGINX runs now, so only endpoints differ. True once the
        master's new workers run it; else the last good configuration is back on disk (the
        running NGINX kept it) and the checked reload runs. None: signalled, and `interrupt()`
        answered True before the new workers ran alone (`ingress_pending` holds the wait)."""
        pid = self._master(ident)
        before = nginxproc.accepting_workers(pid) if pid is not None else None
        if pid is None or before is None:
            return False
        conf = directory / "nginx.conf"
        last = conf.read_text()
        self._write_if_changed(conf, text)
        (directory / "nginx.conf.next").unlink(missing_ok=True)
        try:
            nginxproc.hup(pid)
        except PermissionError:  # the master runs as another user: through Docker (30-80 ms more)
            try:
                self.docker.signal(ident, "HUP")
            except DockerError:
                pid = 0
        if pid:
            served = nginxproc.wait_serving(pid, before, SERVING_TIMEOUT, interrupt=interrupt)
            if served is None:
                self.ingress_pending = (pid, before)
                return None
            if served:
                return True
        self._write_if_changed(conf, last)
        self._write_if_changed(directory / "nginx.conf.next", text)
        log.warning("NGINX in %s did not take an endpoints change by SIGHUP: checking it", ident[:12])
        return False

    def _reload_checked(self, ident: str) -> tuple[int, bytes]:
        """`nginx -t` of the staged candidate, then reload: one Docker exec. Returns once the new
        workers run it, where this process can see them."""
        pid = self._master(ident)
        before = nginxproc.accepting_workers(pid) if pid is not None else None
        code, output = self.docker.exec(ident, ["sh", "-c", RELOAD_IF_VALID])
        if code == 0 and pid is not None and before is not None:
            nginxproc.wait_serving(pid, before, SERVING_TIMEOUT)
        return code, output

    # -- ingress ---------------------------------------------------------------------------

    def _certs(self, ingresses: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[str, str]]:
        out = {}
        for ing in ingresses:
            ns = ing["metadata"]["namespace"]
            for tls in (ing.get("spec") or {}).get("tls") or []:
                name = tls.get("secretName")
                secret = self.store.find(SECRET, ns, name or "") if name else None
                if secret is None:
                    continue
                # The key-pair check parses both PEMs: done once per version of the Secret.
                uid, version = secret["metadata"]["uid"], secret["metadata"]["resourceVersion"]
                if self.checked_secrets.get(uid, ("", None))[0] != version:
                    self.checked_secrets[uid] = (version, self._tls_pair(secret))
                pair = self.checked_secrets[uid][1]
                if pair is None:
                    continue
                directory = self.paths.ingress / "certs"
                self._write_if_changed(directory / f"{ns}_{name}.crt", pair[0], 0o600)
                self._write_if_changed(directory / f"{ns}_{name}.key", pair[1], 0o600)
                out[(ns, name)] = (f"/etc/mikro/certs/{ns}_{name}.crt", f"/etc/mikro/certs/{ns}_{name}.key")
        return out

    @staticmethod
    def _tls_pair(secret: dict[str, Any]) -> tuple[str, str] | None:
        """The PEM certificate and key of a TLS Secret, or None when they are not a key pair."""
        data = secret.get("data") or {}
        try:
            cert = base64.b64decode(data.get("tls.crt", ""))
            key = base64.b64decode(data.get("tls.key", ""))
        except ValueError:
            return None
        if not pki.valid_key_pair(cert, key):
            return None
        return cert.decode(), key.decode()

    def ingress_ports(self, addons: dict[str, str]) -> tuple[int, int]:
        return int(addons.get("ingress.httpPort", 80)), int(addons.get("ingress.httpsPort", 443))

    def sync_ingress(
        self, services: list[dict[str, Any]], endpoints: list[dict[str, Any]], addons: dict[str, str]
    ) -> None:
        ingresses = self.store.list(ING)[0]
        http_port, https_port = self.ingress_ports(addons)
        certs = self._certs(ingresses)
        alive = {i["metadata"]["uid"] for i in ingresses}
        for uid in [u for u in self.denied if u not in alive]:
            del self.denied[uid]
        candidates = [i for i in ingresses if not self._is_denied(i)]

        def render(subset: list[dict[str, Any]]) -> tuple[str, dict[str, Any], list[ingress_model.Problem]]:
            model, problems = ingress_model.build(subset, services, endpoints, certs, DEFAULT_CERT)
            return ingress_model.render_ingress(model), model, problems

        def shape_of(subset: list[dict[str, Any]]) -> str:
            """The configuration with one stand-in address behind every Service: the same for
            two configurations that differ only in endpoints."""
            model, _ = ingress_model.build(subset, services, _stand_in_endpoints(services), certs, DEFAULT_CERT)
            return ingress_model.render_ingress(model)

        text, model, problems = render(candidates)
        directory = self.paths.ingress
        directory.mkdir(parents=True, exist_ok=True)
        cspec = ContainerSpec(
            name=f"{self.cluster}_ingress",
            image=self.image,
            labels={L + "kind": "ingress", L + "name": "ingress"},
            command=NGINX_COMMAND,
            network=self.network,
            ports={"80/tcp": (self.bind, http_port), "443/tcp": (self.bind, https_port)},
            binds={str(directory): {"bind": "/etc/mikro", "mode": "rw"}},
            stop_timeout=2,
        )
        cspec.labels[L + "spec-hash"] = spec_hash(cspec)
        current = self.ingress_seen
        if current is None or current["Labels"].get(L + "spec-hash") != cspec.labels[L + "spec-hash"]:
            current = next(iter(self.docker.containers(kind="ingress")), None)
        self.ingress_seen = current if current is not None and current["State"] == "running" else None
        if current is not None and (
            current["Labels"].get(L + "spec-hash") != cspec.labels[L + "spec-hash"]
            or self.docker.on_stale_network(current)
        ):
            self.docker.remove(current["Id"])
            current = None
            self.ingress_seen = None
        conf = directory / "nginx.conf"
        running = current is not None and current["State"] == "running"
        shape = ""
        fast = False
        if running and not (conf.exists() and conf.read_text() == text):
            shape = shape_of(candidates)
            # Only endpoints changed since the configuration NGINX runs: it takes this one too.
            fast = self.shapes.get("ingress") == shape and all(
                _plain_endpoint(ep) for up in model["upstreams"] for ep in up["endpoints"]
            )
        if running and not fast:
            shape = shape or shape_of(candidates)
        for problem in problems:
            self._event_once(problem.ingress, problem.reason, problem.message)
        routed = {ep.rsplit(":", 1)[0] for up in model["upstreams"] for ep in up["endpoints"]}
        self.ingress_services = set(model["services"])
        changed = self._stage(directory, render([])[0], text)
        if current is None:
            self.routed.pop("ingress", None)
            self._settled()
            for port in (http_port, https_port):
                if not host_port_free(self.bind, port):
                    self._set_addon_status(
                        "ingress",
                        f"error: port {port} is already in use on {self.bind}; "
                        "free it, or choose other ports with `mikro enable ingress "
                        "--http-port N --https-port M`",
                    )
                    self.ingress_services = None
                    return
            if self.docker.image(self.image) is None:
                self._set_addon_status("ingress", f"error: image {self.image} is missing; run `mikro images prepare`")
                self.ingress_services = None
                return
            # The container promotes the staged candidate only if `nginx -t` accepts it.
            ident = self.docker.create(cspec)
            self.docker.start(ident)
            self.restarted[cspec.name] = time.monotonic()
            self.wake_later(1.0)  # then check what it promoted, and that it still runs
            self.shapes.pop("ingress", None)
            if not self._started(ident, directory, text):
                return
            shape = shape_of([i for i in candidates if not self._is_denied(i)])
        elif current["State"] != "running":
            ident = current["Id"]
            if cspec.name in self.restarted:
                # It ran under this control plane and exited: say so, and start it again
                # (with the last good configuration) at most every RESTART_BACKOFF seconds.
                info = self.docker.inspect(ident) or {}
                code = int((info.get("State") or {}).get("ExitCode", 0))
                tail = _last_lines(b"".join(self.docker.logs(ident, follow=False, tail=5, timestamps=False)))
                self._set_addon_status("ingress", f"error: the ingress container exited (code {code}): {tail}")
                if not self._may_restart(cspec.name):
                    return
                # Should the last good configuration be what it cannot run (one written before
                # configurations were checked), fall back to the one without user values; the
                # next pass checks the candidate inside the running container.
                self._write_if_changed(directory / "nginx.conf", render([])[0])
            else:  # stopped by `mikro stop` (or the engine's restart)
                self.restarted[cspec.name] = time.monotonic()
            self._settled()  # (its workers are gone)
            self.docker.start(ident)
            self.wake_later(1.0)
            self.shapes.pop("ingress", None)
            if not self._started(ident, directory, text):
                return
            shape = shape_of([i for i in candidates if not self._is_denied(i)])
        elif changed:
            # While NGINX lets the workers of the configuration before accept for its 100 ms, a
            # newer change (the second replica's readiness) signals again at once rather than
            # queue behind that wait; but not twice in a row, so that a stream of changes still
            # settles (and NGINX is not signalled without pause).
            interrupt = self.wake_ingress.is_set if self.ingress_pending is None else None
            hupped = self._hup(current["Id"], directory, text, interrupt) if fast else False
            if hupped is None:
                previous = self.routed.get("ingress", set())
                self.unsettled |= previous | routed
                self.routed["ingress"] = previous & routed  # what every accepting worker sends to
                self.shapes["ingress"] = shape
                return  # the next pass follows at once (the change that interrupted woke it)
            if hupped:
                code, output = 0, b""
            else:
                # `nginx -t` and reload in one Docker exec; only a refusal costs the search for
                # the Ingress that breaks it (each candidate checked inside the container).
                code, output = self._reload_checked(current["Id"])
                if code != 0:
                    text, model, problems = self._checked_ingress(
                        current["Id"], candidates, text, model, problems, render
                    )
                    routed = {ep.rsplit(":", 1)[0] for up in model["upstreams"] for ep in up["endpoints"]}
                    self.ingress_services = set(model["services"])
                    shape = shape_of([i for i in candidates if not self._is_denied(i)])
                    if self._stage(directory, render([])[0], text):
                        code, output = self._reload_checked(current["Id"])
                    else:
                        code, output = 0, b""  # what remains is what NGINX runs already
            if code != 0:
                for ing in candidates:
                    if ingress_model.serves(ing):
                        self._event_once(
                            ing,
                            "ConfigError",
                            "the new NGINX configuration was refused and the previous one is kept: "
                            + _last_lines(output),
                        )
                return
        if not changed and self.ingress_pending is not None and current is not None:
            # the configuration signalled last is this one: it counts once its workers run alone
            pid, before = self.ingress_pending
            self._settled()
            if not nginxproc.wait_serving(pid, before, SERVING_TIMEOUT):
                log.warning("NGINX in the ingress did not take an endpoints change by SIGHUP: checking it")
                self._write_if_changed(directory / "nginx.conf.next", text)
                if self._reload_checked(current["Id"])[0] != 0:
                    self.wake_later(0.5)
                    return
        self._settled()
        self.routed["ingress"] = routed
        if shape:
            self.shapes["ingress"] = shape
        elif running and not changed and "ingress" not in self.shapes:
            self.shapes["ingress"] = shape_of([i for i in candidates if not self._is_denied(i)])
        self._set_served([i for i in candidates if not self._is_denied(i)])
        self._set_addon_status("ingress", "running")

    def _settled(self) -> None:
        """No signalled configuration of the ingress is still on its way in."""
        self.ingress_pending = None
        self.unsettled = set()

    def _is_denied(self, ing: dict[str, Any]) -> bool:
        meta = ing["metadata"]
        return self.denied.get(meta["uid"], ("", ""))[0] == meta.get("resourceVersion")

    def _nginx_check(self, ident: str, text: str) -> tuple[bool, str]:
        """`nginx -t` of a candidate inside the running ingress container."""
        self._write_if_changed(self.paths.ingress / "nginx.conf.check", text)
        code, output = self.docker.exec(ident, ["nginx", "-q", "-t", "-c", "/etc/mikro/nginx.conf.check"])
        return code == 0, _last_lines(output)

    def _checked_ingress(
        self,
        ident: str,
        candidates: list[dict[str, Any]],
        text: str,
        model: dict[str, Any],
        problems: list[ingress_model.Problem],
        render: Any,
    ) -> tuple[str, dict[str, Any], list[ingress_model.Problem]]:
        """The candidate if NGINX accepts it; else the configuration without the Ingresses
        that make NGINX refuse it (each denied, with an event), as ingress-nginx's admission
        refuses the one Ingress and keeps serving the others."""
        conf = self.paths.ingress / "nginx.conf"
        if conf.exists() and conf.read_text() == text:
            return text, model, problems
        ok, why = self._nginx_check(ident, text)
        if ok:
            return text, model, problems
        served = [i for i in candidates if ingress_model.serves(i)]
        others = [i for i in candidates if not ingress_model.serves(i)]
        bad: list[tuple[dict[str, Any], str]] = []
        # Most often the Ingress changed last breaks it: try without it first.
        newest = max(served, key=lambda i: int(i["metadata"].get("resourceVersion") or 0), default=None)
        if newest is not None and self._nginx_check(ident, render([i for i in candidates if i is not newest])[0])[0]:
            bad.append((newest, why))
        else:
            accepted: list[dict[str, Any]] = []
            for ing in served:
                ok, message = self._nginx_check(ident, render(others + accepted + [ing])[0])
                if ok:
                    accepted.append(ing)
                else:
                    bad.append((ing, message))
        for ing, message in bad:
            self.denied[ing["metadata"]["uid"]] = (ing["metadata"].get("resourceVersion", ""), message)
            self._event_once(
                ing,
                "Rejected",
                f"NGINX refuses the configuration with this ingress, which is not served (the others are): {message}",
            )
        kept = [i for i in candidates if not self._is_denied(i)]
        return render(kept)

    def _set_served(self, ingresses: list[dict[str, Any]]) -> None:
        address = self.bind if self.bind != "0.0.0.0" else "127.0.0.1"
        for ing in ingresses:
            if not ingress_model.serves(ing):
                continue
            lb = {"ingress": [{"ip": address}]}
            if (ing.get("status") or {}).get("loadBalancer") != lb:
                ing["status"] = {"loadBalancer": lb}
                try:
                    self.store.update(ING, ing, status_only=True)
                except ApiError:
                    pass

    def shutdown(self) -> None:
        self.stop.set()
        self.wake_all()
        running = [c for c in self.docker.containers(kind="proxy") + self.docker.containers(kind="ingress") if c["State"] == "running"]
        with ThreadPoolExecutor(max_workers=16) as pool:  # side by side, as the pods
            list(pool.map(lambda c: self.docker.stop(c["Id"], 1), running))


def _stand_in_endpoints(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Endpoints with one address behind every port of every Service (for a shape)."""
    return [
        {
            "metadata": {"namespace": s["metadata"]["namespace"], "name": s["metadata"]["name"]},
            "subsets": [
                {
                    "addresses": [{"ip": SHAPE_ADDRESS}],
                    "ports": [{"name": p.get("name", ""), "port": 1} for p in (s.get("spec") or {}).get("ports") or []],
                }
            ],
        }
        for s in services
    ]


def _plain_endpoint(endpoint: str) -> bool:
    """`a.b.c.d:port`: what NGINX takes as one server address (IPv6 needs brackets)."""
    host, _, port = endpoint.rpartition(":")
    return port.isdigit() and host.count(".") == 3 and all(part.isdigit() for part in host.split("."))


def _last_lines(output: bytes, count: int = 2) -> str:
    lines = [line for line in output.decode(errors="replace").strip().splitlines() if line.strip()]
    return " ".join(lines[-count:])
