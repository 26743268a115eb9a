"""Shared fixtures. Unit tests need nothing; tests marked `docker` drive the real `mikro`
command against the real Docker engine, each module with its own cluster name and state
directory, and remove everything carrying that cluster's label before and after."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_IMAGE = "hello-ip:1"
# A suffix of this run's own on every test cluster's name, so that two runs (two checkouts, a
# developer's and CI's) never share a cluster, its containers or its network.
RUN_SUFFIX = secrets.token_hex(2)
HOST_PORTS_LOCK = Path("/tmp/mikro-e2e-host-ports.lock")
DOCKERD_LOG = "/tmp/mikro-ci-dockerd.log"


def cluster_name(base: str) -> str:
    return f"mkt-{base}-{RUN_SUFFIX}"


@contextlib.contextmanager
def host_ports() -> Iterator[None]:
    """Hold the host's ports 80 and 443 (and NodePorts) for one module across concurrent runs."""
    with open(HOST_PORTS_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def remove_cluster_leftovers(cluster: str) -> None:
    """Every container, network and volume labelled with this (test) cluster's name; the
    control plane's container first, or it would start pods again meanwhile."""
    import docker

    client = docker.from_env()
    label = f"io.mikro/cluster={cluster}"
    found = client.api.containers(all=True, filters={"label": label})
    for c in sorted(found, key=lambda c: c["Labels"].get("io.mikro/kind") != "controlplane"):
        client.api.remove_container(c["Id"], force=True, v=True)
    for v in client.volumes.list(filters={"label": label}):
        v.remove(force=True)
    for n in client.networks.list(filters={"label": label}):
        n.remove()


class Mikro:
    """The real CLI against one test cluster."""

    def __init__(self, home: Path, cluster: str) -> None:
        self.home = home
        self.cluster = cluster
        # `mikro kubectl` runs a real kubectl when one is on PATH; the suite tests mikro's own
        # verbs here, and the delegation in test_e2e_kubectl.py.
        self.env = {**os.environ, "MIKRO_HOME": str(home), "MIKRO_CLUSTER": cluster, "MIKRO_KUBECTL": "builtin"}

    def run(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "mikro.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"mikro {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, check=check)

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def pods(self, selector: str | None = None, namespace: str = "default") -> list[dict[str, Any]]:
        args = ["pods", "-n", namespace] + (["-l", selector] if selector else [])
        return self.json(*args)["items"]

    def kill_control_plane(self) -> None:
        """After a failed stop: end this cluster's control plane by the pid it recorded (never
        by name: other clusters run the same program)."""
        try:
            pid = int(json.loads((self.home / "apiserver.json").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)

    def log_tail(self) -> str:
        try:
            return "\n".join((self.home / "controlplane.log").read_text().splitlines()[-40:])
        except OSError:
            return ""


KUBECTL = os.environ.get("MIKRO_TEST_KUBECTL") or shutil.which("kubectl") or "kubectl"


def real_kubectl(m: Mikro, workdir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Real kubectl on this cluster: its kubeconfig written to `workdir`, a cache of its own."""
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(m.run("config").stdout)

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "KUBECACHEDIR": str(workdir / "cache")},
        )

    return run


def wait_for(check: Callable[[], Any], timeout: float = 60, interval: float = 0.2, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}; last value: {last!r}")


def process_exited(pid: int) -> bool:
    """Gone, or a zombie: a dockerd this run started is pytest's child, and one `.ci/run` started
    may belong to a PID 1 that never reaps, so /proc keeps an exited engine's entry."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def docker_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def restart_docker_engine(between: Callable[[], None] | None = None) -> None:
    """Stop the host's engine (it stops every container, as at shutdown), run `between`, then
    start it again as `.ci/run` does. Only for a suite that owns the engine."""
    pid = int(Path("/var/run/docker.pid").read_text().strip())
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"dockerd")
    os.kill(pid, 15)
    wait_for(lambda: process_exited(pid), 120, 0.2, "the Docker engine to exit")
    if between is not None:
        between()
    with open(DOCKERD_LOG, "ab") as log:
        subprocess.Popen(
            ["dockerd"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    wait_for(docker_answers, 120, 0.5, "docker info to answer")


def run_lock(suffix: str) -> Path:
    return Path(f"/tmp/mikro-e2e-run-{suffix}.lock")


def remove_dead_runs_clusters() -> None:
    """Test clusters of runs that ended without their teardown (killed, or their machine's
    session ended): a supervised one comes back at every engine start and keeps port 80.
    A run holds its lock file while it lives; a cluster whose run holds none is removed."""
    import docker

    clusters = {
        c["Labels"].get("io.mikro/cluster", "")
        for c in docker.from_env().api.containers(all=True, filters={"label": "io.mikro/cluster"})
    }
    for cluster in sorted(c for c in clusters if c.startswith("mkt-")):
        suffix = cluster.rsplit("-", 1)[-1]
        if suffix == RUN_SUFFIX:
            continue
        with open(run_lock(suffix), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # that run is alive
        run_lock(suffix).unlink(missing_ok=True)
        remove_cluster_leftovers(cluster)


@pytest.fixture(scope="session")
def this_run() -> Iterator[None]:
    """This run's lock, held while it lives (see remove_dead_runs_clusters)."""
    with open(run_lock(RUN_SUFFIX), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            run_lock(RUN_SUFFIX).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def images(this_run: None) -> None:
    """mikro's own images and the example app, built offline, once per run."""
    remove_dead_runs_clusters()
    env = {**os.environ}
    subprocess.run([sys.executable, "-m", "mikro.cli", "images", "prepare"], check=True, env=env, timeout=900)
    subprocess.run([str(ROOT / "examples" / "hello-ip" / "build"), EXAMPLE_IMAGE], check=True, timeout=300)
    subprocess.run(["docker", "tag", EXAMPLE_IMAGE, "hello-ip:2"], check=True)


@pytest.fixture(scope="module")
def mikro(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, images: None) -> Iterator[Mikro]:
    """A started cluster of this test module's own (cleaned up before and after)."""
    cluster = cluster_name(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-"))
    remove_cluster_leftovers(cluster)
    m = Mikro(tmp_path_factory.mktemp(cluster), cluster)
    with contextlib.ExitStack() as stack:
        if getattr(request.module, "USES_HOST_PORTS", False):
            stack.enter_context(host_ports())
        m.run("start")
        try:
            yield m
        finally:
            m.run("stop", check=False)
            m.kill_control_plane()
            remove_cluster_leftovers(cluster)
