"""The metrics-server addon's source: CPU and memory of each pod container and of the node.

As metrics-server does with the kubelet's figures: CPU is a rate (the growth of the cumulative
usage between two samples, over the window between them), memory is the working set (usage
less inactive file pages, what the OOM killer looks at). Figures come from the containers'
cgroup files, which cost a file read; the Docker stats API (about a second per container) is
the fallback where those files are not visible. Sampling runs only while the addon is enabled.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("mikro.metrics")

METRICS_ADDON = "metrics-server"
# In the control plane's container the host's cgroup tree is mounted elsewhere (mikro.lifecycle).
CGROUP_ROOT = Path(os.environ.get("MIKRO_CGROUP_ROOT") or "/sys/fs/cgroup")
PERIOD_SECONDS = 10.0  # metrics-server's default resolution is 15 s; kubectl top reads the latest


@dataclass(frozen=True)
class Sample:
    cpu_ns: int  # cumulative CPU time, nanoseconds
    memory: int  # working set, bytes
    at: float  # monotonic seconds


@dataclass(frozen=True)
class Usage:
    nanocores: int
    memory: int


def cpu_nanocores(previous: Sample, current: Sample) -> int:
    elapsed = current.at - previous.at
    if elapsed <= 0 or current.cpu_ns < previous.cpu_ns:  # a restarted container starts again from 0
        return 0
    return int((current.cpu_ns - previous.cpu_ns) / elapsed)


def working_set(usage: int, stats: dict[str, int]) -> int:
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return max(usage - inactive, 0)


def parse_stat_file(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def cgroup_dirs(container_id: str, root: Path = CGROUP_ROOT) -> tuple[Path, Path, bool] | None:
    """(cpu dir, memory dir, is cgroup v2) of a container, for the cgroupfs and systemd drivers."""
    for cpu, mem in (
        (root / "cpuacct" / "docker" / container_id, root / "memory" / "docker" / container_id),
        (root / "cpuacct" / "system.slice" / f"docker-{container_id}.scope",
         root / "memory" / "system.slice" / f"docker-{container_id}.scope"),
    ):
        if (cpu / "cpuacct.usage").is_file() and (mem / "memory.usage_in_bytes").is_file():
            return cpu, mem, False
    for unified in (root / "docker" / container_id, root / "system.slice" / f"docker-{container_id}.scope"):
        if (unified / "cpu.stat").is_file():
            return unified, unified, True
    return None


def read_cgroup(dirs: tuple[Path, Path, bool], now: float) -> Sample:
    cpu, mem, v2 = dirs
    if v2:
        cpu_ns = parse_stat_file((cpu / "cpu.stat").read_text()).get("usage_usec", 0) * 1000
        usage = int((mem / "memory.current").read_text())
    else:
        cpu_ns = int((cpu / "cpuacct.usage").read_text())
        usage = int((mem / "memory.usage_in_bytes").read_text())
    return Sample(cpu_ns, working_set(usage, parse_stat_file((mem / "memory.stat").read_text())), now)


def from_docker_stats(stats: dict[str, Any], now: float) -> Sample:
    memory = stats.get("memory_stats") or {}
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0)
    return Sample(int(cpu), working_set(int(memory.get("usage", 0)), memory.get("stats") or {}), now)


def host_sample(now: float, proc: Path = Path("/proc")) -> Sample:
    """The node: all CPUs' busy time and the memory in use (MemTotal - MemAvailable)."""
    fields = [int(x) for x in (proc / "stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    busy_jiffies = sum(fields[:8]) - idle
    meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in (proc / "meminfo").read_text().splitlines()
               if line.split()[1:2] and line.split()[1].isdigit()}
    return Sample(busy_jiffies * 10_000_000, meminfo.get("MemTotal", 0) - meminfo.get("MemAvailable", 0), now)


def cpu_quantity(nanocores: int) -> str:
    return f"{nanocores}n"


def memory_quantity(size: int) -> str:
    return f"{size // 1024}Ki"


def _stamp(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_metrics(namespace: str, name: str, labels: dict[str, str], containers: dict[str, Usage], wall: float,
                window: float) -> dict[str, Any]:
    return {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "creationTimestamp": _stamp(wall)},
        "timestamp": _stamp(wall),
        "window": f"{window:.0f}s",
        "containers": [
            {"name": c, "usage": {"cpu": cpu_quantity(u.nanocores), "memory": memory_quantity(u.memory)}}
            for c, u in sorted(containers.items())
        ],
    }


def node_metrics(name: str, usage: Usage, wall: float, window: float) -> dict[str, Any]:
    return {
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}, "creationTimestamp": _stamp(wall)},
        "timestamp": _stamp(wall),
        "window": f"{window:.0f}s",
        "usage": {"cpu": cpu_quantity(usage.nanocores), "memory": memory_quantity(usage.memory)},
    }


class ContainerSource(Protocol):
    def containers(self, **labels: str) -> list[dict[str, Any]]: ...

    def stats(self, ident: str) -> dict[str, Any] | None: ...


class MetricsSampler:
    """Samples while `enabled()` says so; answers the latest PodMetrics and NodeMetrics."""

    def __init__(self, docker: ContainerSource, node_name: str, enabled: Callable[[], bool],
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 period: float = PERIOD_SECONDS) -> None:
        self.docker, self.node_name, self.enabled = docker, node_name, enabled
        self.clock, self.wall, self.period = clock, wall, period
        self.lock = threading.Lock()
        self.previous: dict[str, Sample] = {}  # container id -> last sample
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.node: dict[str, Any] | None = None
        self.host_previous: Sample | None = None
        self.stop = threading.Event()
        self.on_first_sample: Callable[[], None] = lambda: None

    def start(self) -> None:
        threading.Thread(target=self._loop, name="metrics", daemon=True).start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            if self.enabled():
                try:
                    self.sample()
                except Exception:  # a bad sample must not end the sampling
                    log.exception("metrics sample failed")
                self.stop.wait(self.period)
            else:
                self.clear()
                self.stop.wait(1.0)

    def clear(self) -> None:
        with self.lock:
            self.previous.clear()
            self.pods.clear()
            self.node, self.host_previous = None, None

    def _sample_container(self, ident: str, now: float) -> Sample | None:
        dirs = cgroup_dirs(ident)
        try:
            if dirs is not None:
                return read_cgroup(dirs, now)
            stats = self.docker.stats(ident)
            return from_docker_stats(stats, now) if stats else None
        except (OSError, ValueError):
            return None  # the container went away between the listing and the read

    def sample(self) -> None:
        now, wall = self.clock(), self.wall()
        running = [c for c in self.docker.containers(kind="pod") if c.get("State") == "running"]
        pods: dict[tuple[str, str], tuple[dict[str, str], dict[str, Usage]]] = {}
        seen: dict[str, Sample] = {}
        window = self.period
        for c in running:
            labels = c.get("Labels") or {}
            container = labels.get("io.mikro/container", "")
            if container == "POD":
                continue  # the infra container is mikro's, not the user's (as the pause container)
            current = self._sample_container(c["Id"], now)
            if current is None:
                continue
            seen[c["Id"]] = current
            previous = self.previous.get(c["Id"])
            if previous is None:
                continue  # a rate needs two samples
            window = current.at - previous.at
            key = (labels.get("io.mikro/namespace", ""), labels.get("io.mikro/name", ""))
            pod_labels = {k.removeprefix("io.mikro/label."): v for k, v in labels.items() if k.startswith("io.mikro/label.")}
            pods.setdefault(key, (pod_labels, {}))[1][container] = Usage(cpu_nanocores(previous, current), current.memory)
        host = host_sample(now)
        with self.lock:
            first = self.node is None
            self.previous = seen
            self.pods = {k: pod_metrics(k[0], k[1], lbl, usage, wall, window) for k, (lbl, usage) in pods.items()}
            if self.host_previous is not None:
                usage = Usage(cpu_nanocores(self.host_previous, host), host.memory)
                self.node = node_metrics(self.node_name, usage, wall, host.at - self.host_previous.at)
            self.host_previous = host
        if first and self.node is not None:
            self.on_first_sample()

    # -- what the API serves ----------------------------------------------------------------

    def serving(self) -> bool:
        with self.lock:
            return self.node is not None

    def list_pods(self, namespace: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [m for (ns, _), m in sorted(self.pods.items()) if namespace in (None, ns)]

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.pods.get((namespace, name))

    def list_nodes(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.node] if self.node else []
