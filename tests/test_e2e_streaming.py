"""exec, attach, cp and port-forward as real clients use them: kubectl 1.32 (WebSocket, and
SPDY inside it for port-forward) and the official Python client (v4/v5 channels)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Mikro, wait_for

pytestmark = pytest.mark.docker

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers: [{name: web, image: 'hello-ip:1'}]
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  restartPolicy: Never
  containers:
  - name: reader
    image: 'hello-ip:1'
    stdin: true
    stdinOnce: true
    command: [sh, -c, 'read line; echo "got $line"; sleep 1']
"""


@pytest.fixture(scope="module")
def kubeconfig(mikro: Mikro, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kubeconfig") / "config"
    path.write_text(mikro.run("config").stdout)
    return path


@pytest.fixture(scope="module")
def pods(mikro: Mikro, kubeconfig: Path) -> None:
    mikro.run("apply", "-f", "-", input=POD)
    for name in ("web", "reader"):
        wait_for(
            lambda n=name: any(c["type"] == "Ready" and c["status"] == "True" for c in pod_conditions(mikro, n)),
            timeout=120,
            what=f"pod {name} Ready",
        )
    # An older hello-ip image (built before it had one) lacks /tmp.
    kubectl(kubeconfig, "exec", "web", "--", "mkdir", "-p", "/tmp")


def pod_conditions(mikro: Mikro, name: str) -> list[dict[str, Any]]:
    return (mikro.json("pod", name).get("status") or {}).get("conditions") or []


def kubectl(
    kubeconfig: Path, *args: str, input: str | bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=not isinstance(input, bytes),
        input=input,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_exec_prints_once_and_runs_once(kubeconfig: Path, pods: None) -> None:
    proc = kubectl(kubeconfig, "exec", "web", "--", "sh", "-c", "echo x >> /tmp/count; echo hi")
    assert proc.stdout == "hi\n" and proc.stderr == ""
    assert kubectl(kubeconfig, "exec", "web", "--", "wc", "-l", "/tmp/count").stdout.split()[0] == "1"


def test_exec_exit_code_and_stderr(kubeconfig: Path, pods: None) -> None:
    proc = kubectl(kubeconfig, "exec", "web", "--", "sh", "-c", "echo oops >&2; exit 3", check=False)
    assert proc.returncode == 3
    assert proc.stderr == "oops\ncommand terminated with exit code 3\n"


def test_exec_stdin(kubeconfig: Path, pods: None) -> None:
    proc = kubectl(kubeconfig, "exec", "-i", "web", "--", "sh", "-c", "cat; echo end", input="a\nb\n")
    assert proc.stdout == "a\nb\nend\n"


def test_request_that_is_not_an_upgrade_runs_nothing(kubeconfig: Path, pods: None) -> None:
    """kubectl's SPDY fallback (and any plain POST) gets a 400 and nothing runs."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    token = config["users"][0]["user"]["token"]
    host, port = cluster["server"].removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    for headers in (
        {},
        {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"},
    ):
        conn = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
        query = "command=sh&command=-c&command=echo+y+%3E%3E+/tmp/plain&stdout=true"
        conn.request(
            "POST",
            f"/api/v1/namespaces/default/pods/web/exec?{query}",
            headers={"Authorization": f"Bearer {token}", **headers},
        )
        resp = conn.getresponse()
        body = json.loads(resp.read())
        conn.close()
        assert resp.status == 400 and body["kind"] == "Status" and body["code"] == 400
    proc = kubectl(kubeconfig, "exec", "web", "--", "cat", "/tmp/plain", check=False)
    assert proc.returncode == 1 and "No such file" in proc.stderr


def test_cp_both_ways(kubeconfig: Path, pods: None, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(200_000) + b"\nend\n")
    kubectl(kubeconfig, "cp", str(source), "web:/tmp/data.bin")
    assert kubectl(kubeconfig, "exec", "web", "--", "wc", "-c", "/tmp/data.bin").stdout.split()[0] == "200005"
    back = tmp_path / "back.bin"
    kubectl(kubeconfig, "cp", "web:/tmp/data.bin", str(back))
    assert back.read_bytes() == source.read_bytes()


def test_attach_with_stdin(kubeconfig: Path, pods: None) -> None:
    proc = kubectl(kubeconfig, "attach", "-i", "reader", input="hello\n")
    assert "got hello" in proc.stdout


@pytest.fixture
def port_forward(kubeconfig: Path, pods: None) -> Iterator[int]:
    port = 18000 + os.getpid() % 1000
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            ["kubectl", "--kubeconfig", str(kubeconfig), "port-forward", "pod/web", f"{port}:8080"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: log.seek(0) == 0 and b"Forwarding from 127.0.0.1" in log.read(), timeout=30)
            yield port
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_port_forward_then_http(port_forward: int) -> None:
    for _ in range(2):  # two connections through one port-forward
        with urllib.request.urlopen(f"http://127.0.0.1:{port_forward}/", timeout=30) as resp:
            assert resp.status == 200 and resp.read().decode().startswith("Hello from web")


def test_official_python_client_exec_and_port_forward(kubeconfig: Path, pods: None) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward, stream

    api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    out = stream(
        api.connect_get_namespaced_pod_exec,
        "web",
        "default",
        command=["sh", "-c", "echo py"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out == "py\n"
    resp = stream(
        api.connect_get_namespaced_pod_exec,
        "web",
        "default",
        command=["sh", "-c", "exit 4"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=30)
    assert resp.returncode == 4

    forward = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="8080")
    sock = forward.socket(8080)
    sock.setblocking(True)
    sock.settimeout(30)
    sock.sendall(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
    data = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    forward.close()
    assert data.startswith(b"HTTP/1.") and b"Hello from web" in data


def test_mikro_kubectl_exec_uses_the_api(mikro: Mikro, pods: None) -> None:
    proc = mikro.run("kubectl", "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 5", check=False)
    assert (proc.returncode, proc.stdout) == (5, "out\n")
    assert proc.stderr == "err\ncommand terminated with exit code 5\n"
    assert mikro.run("kubectl", "exec", "-i", "web", "--", "wc", "-l", input="1\n2\n3\n").stdout.strip() == "3"


def listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return True
    except OSError:
        return False


def test_kr8s_exec_and_port_forward(kubeconfig: Path, pods: None) -> None:
    import kr8s
    from kr8s.objects import Pod

    api = kr8s.api(kubeconfig=str(kubeconfig))
    pod = Pod.get("web", namespace="default", api=api)
    done = pod.exec(["sh", "-c", "echo kr8s; echo e >&2"])
    assert (done.stdout, done.stderr, done.returncode) == (b"kr8s\n", b"e\n", 0)
    assert pod.exec(["sh", "-c", "exit 6"], check=False).returncode == 6
    # (kr8s 0.20 offers only v4.channel.k8s.io yet demands v5 for stdin, on any cluster.)
    local = 18000 + (os.getpid() + 500) % 1000
    forward = pod.portforward(remote_port=8080, local_port=local)
    forward.start()
    try:
        # kr8s starts listening in a thread of its own, a moment after start() returns.
        wait_for(lambda: listening(local), timeout=30, what=f"kr8s listening on {local}")
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=30) as resp:
            assert resp.read().decode().startswith("Hello from web")
    finally:
        forward.stop()


def test_lightkube_exec_with_stdin(kubeconfig: Path, pods: None) -> None:
    from lightkube import Client, KubeConfig

    client = Client(config=KubeConfig.from_file(str(kubeconfig)))
    done = client.exec("web", namespace="default", command=["sh", "-c", "echo lk; exit 2"], stdout=True, stderr=True)
    assert (done.stdout, done.exit_code) == ("lk\n", 2)
    done = client.exec("web", namespace="default", command=["cat"], stdin="in\n", stdout=True)
    assert (done.stdout, done.exit_code) == ("in\n", 0)
