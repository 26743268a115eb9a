"""The kubelet's promises against real Docker: every volume type, init containers in order,
the image fallback when a pull fails, and `mikro stop`'s SIGTERM-then-SIGKILL with the grace
period. Each checks what the user sees (files, logs, events, exit codes)."""

from __future__ import annotations

import json
import socket
import textwrap
import urllib.request
from pathlib import Path

import docker
import pytest

from .conftest import Mikro, cluster_name, remove_cluster_leftovers, wait_for

pytestmark = pytest.mark.docker


def pod_phase(m: Mikro, name: str) -> str:
    return m.json("pod", name).get("status", {}).get("phase", "")


def logs(m: Mikro, pod: str, container: str | None = None) -> str:
    return m.kubectl("logs", pod, *(["-c", container] if container else [])).stdout


def test_each_volume_type_carries_its_data(mikro: Mikro, tmp_path: Path) -> None:
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "from-host.txt").write_text("host data\n")
    manifest = f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: vol-cm}}
data: {{greeting: "hello from configmap"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: vol-secret}}
stringData: {{password: "s3cret-pw"}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: vol-claim}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 10Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: vols}}
spec:
  restartPolicy: Never
  containers:
  - name: writer
    image: hello-ip:1
    command: ["sh", "-c", "echo shared > /shared/note; echo kept >> /data/log; sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
    - {{name: claim, mountPath: /data}}
  - name: reader
    image: hello-ip:1
    command: ["sh", "-c", "sleep 3600"]
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
    - {{name: cm, mountPath: /etc/cm}}
    - {{name: secret, mountPath: /etc/secret}}
    - {{name: host, mountPath: /host}}
  volumes:
  - {{name: shared, emptyDir: {{}}}}
  - {{name: cm, configMap: {{name: vol-cm}}}}
  - {{name: secret, secret: {{secretName: vol-secret}}}}
  - {{name: host, hostPath: {{path: "{host_dir}"}}}}
  - {{name: claim, persistentVolumeClaim: {{claimName: vol-claim}}}}
"""
    mikro.run("apply", "-f", "-", "--wait", input=manifest, timeout=120)

    def read(path: str) -> str:
        return mikro.kubectl("exec", "vols", "-c", "reader", "--", "cat", path, check=False).stdout

    assert wait_for(lambda: read("/shared/note") == "shared\n", 30, what="the emptyDir shared by both containers")
    assert read("/etc/cm/greeting") == "hello from configmap"
    assert read("/etc/secret/password") == "s3cret-pw"
    assert read("/host/from-host.txt") == "host data\n"
    # configMap and secret volumes follow their objects while the pod runs, swapped whole
    # through `..data` as the kubelet's AtomicWriter does
    listed = mikro.kubectl("exec", "vols", "-c", "reader", "--", "ls", "-a", "/etc/cm").stdout.split()
    assert "..data" in listed and "greeting" in listed
    changed = manifest.replace("hello from configmap", "changed while running").replace("s3cret-pw", "rotated-pw")
    mikro.run("apply", "-f", "-", input=changed)
    wait_for(lambda: read("/etc/cm/greeting") == "changed while running", 30, what="the configMap volume updated")
    wait_for(lambda: read("/etc/secret/password") == "rotated-pw", 30, what="the secret volume updated")
    # the PVC outlives the pod: a second pod on the same claim reads what the first wrote
    mikro.kubectl("delete", "pod", "vols")
    wait_for(lambda: mikro.kubectl("get", "pod", "vols", check=False).returncode != 0, 60, what="vols deleted")
    second = """
apiVersion: v1
kind: Pod
metadata: {name: vols2}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: "hello-ip:1", command: ["sh", "-c", "cat /data/log"], volumeMounts: [{name: claim, mountPath: /data}]}
  volumes: [{name: claim, persistentVolumeClaim: {claimName: vol-claim}}]
"""
    mikro.run("apply", "-f", "-", input=second)
    wait_for(lambda: pod_phase(mikro, "vols2") == "Succeeded", 60, what="vols2 to finish")
    assert logs(mikro, "vols2") == "kept\n"
    mikro.kubectl("delete", "pod", "vols2", check=False)


GRPC_HEALTH_SERVER = """\
import socket, threading
import h2.config, h2.connection, h2.events

def status():  # SERVING (1) unless /tmp/down exists (NOT_SERVING, 2)
    try:
        open("/tmp/down").close()
        return 2
    except OSError:
        return 1

def serve(sock):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    while True:
        data = sock.recv(65536)
        if not data:
            return
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                reply = bytes([8, status()])
                conn.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
                conn.send_data(ev.stream_id, bytes([0, 0, 0, 0, len(reply)]) + reply)
                conn.send_headers(ev.stream_id, [("grpc-status", "0")], end_stream=True)
        sock.sendall(conn.data_to_send())

listener = socket.create_server(("0.0.0.0", 9555))
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
"""


def test_a_grpc_probe_asks_the_health_service(mikro: Mikro) -> None:
    """A real gRPC health server in a pod (Python with h2, from the control plane's image): the
    pod is Ready while it answers SERVING and not Ready once it answers NOT_SERVING."""
    image = docker.from_env().containers.get(f"{mikro.cluster}-control-plane").image.tags[0]
    manifest = f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: grpc-health}}
data:
  server.py: |
{textwrap.indent(GRPC_HEALTH_SERVER, "    ")}
---
apiVersion: v1
kind: Pod
metadata: {{name: grpc}}
spec:
  containers:
  - name: server
    image: "{image}"
    command: ["python3", "/srv/server.py"]
    readinessProbe: {{grpc: {{port: 9555}}, periodSeconds: 1, failureThreshold: 1}}
    volumeMounts: [{{name: code, mountPath: /srv}}]
  volumes: [{{name: code, configMap: {{name: grpc-health}}}}]
"""
    mikro.run("apply", "-f", "-", input=manifest)

    def ready() -> bool:
        conditions = mikro.json("pod", "grpc").get("status", {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_for(ready, 60, what="the pod Ready on SERVING")
    mikro.kubectl("exec", "grpc", "--", "touch", "/tmp/down")
    wait_for(lambda: not ready(), 30, what="the pod not Ready on NOT_SERVING")
    events = mikro.kubectl("describe", "pod", "grpc").stdout
    assert 'service unhealthy (responded with "NOT_SERVING")' in events
    mikro.kubectl("delete", "pod", "grpc", "--grace-period=0")


def test_init_containers_run_in_order_before_the_app(mikro: Mikro) -> None:
    manifest = """
apiVersion: v1
kind: Pod
metadata: {name: inits}
spec:
  restartPolicy: Never
  initContainers:
  - {name: first, image: "hello-ip:1", command: ["sh", "-c", "echo one >> /work/order"], volumeMounts: [{name: w, mountPath: /work}]}
  - {name: second, image: "hello-ip:1", command: ["sh", "-c", "echo two >> /work/order"], volumeMounts: [{name: w, mountPath: /work}]}
  containers:
  - {name: main, image: "hello-ip:1", command: ["sh", "-c", "echo three >> /work/order; cat /work/order"], volumeMounts: [{name: w, mountPath: /work}]}
  volumes: [{name: w, emptyDir: {}}]
"""
    mikro.run("apply", "-f", "-", input=manifest)
    wait_for(lambda: pod_phase(mikro, "inits") == "Succeeded", 90, what="the pod to finish")
    assert logs(mikro, "inits", "main") == "one\ntwo\nthree\n"
    mikro.kubectl("delete", "pod", "inits", check=False)


def test_a_failed_pull_falls_back_to_the_local_image_and_says_so(mikro: Mikro) -> None:
    manifest = """
apiVersion: v1
kind: Pod
metadata: {name: always}
spec:
  containers: [{name: web, image: "hello-ip:1", imagePullPolicy: Always}]
"""
    mikro.run("apply", "-f", "-", input=manifest)
    wait_for(lambda: pod_phase(mikro, "always") == "Running", 90, what="the pod to run on the local image")
    events = mikro.kubectl("get", "events", "--field-selector", "involvedObject.name=always", "-o", "json").stdout
    messages = [e.get("message", "") for e in json.loads(events)["items"]]
    assert any(
        m.startswith('Pull of "hello-ip:1" fail') and m.endswith("using the image present on the host")
        for m in messages
    ), messages
    mikro.kubectl("delete", "pod", "always", "--now", check=False)


def test_stop_sends_sigterm_then_sigkill_after_the_grace_period(mikro: Mikro, tmp_path: Path) -> None:
    out = tmp_path / "term"
    out.mkdir()
    manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: polite}}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: hello-ip:1
    command: ["sh", "-c", "trap 'echo got-TERM > /out/polite; exit 0' TERM; while true; do sleep 0.2; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
  volumes: [{{name: out, hostPath: {{path: "{out}"}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: stubborn}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: hello-ip:1
    command: ["sh", "-c", "trap '' TERM; echo ready > /out/stubborn; while true; do sleep 0.2; done"]
    volumeMounts: [{{name: out, mountPath: /out}}]
  volumes: [{{name: out, hostPath: {{path: "{out}"}}}}]
"""
    mikro.run("apply", "-f", "-", "--wait", input=manifest, timeout=120)
    wait_for(lambda: (out / "stubborn").exists(), 30, what="the stubborn pod to start")
    client = docker.from_env()

    def app(pod: str) -> dict[str, object]:
        found = client.api.containers(
            all=True,
            filters={"label": [f"io.mikro/cluster={mikro.cluster}", f"io.mikro/name={pod}", "io.mikro/container=main"]},
        )
        assert len(found) == 1, found
        return client.api.inspect_container(found[0]["Id"])

    ids = {pod: app(pod)["Id"] for pod in ("polite", "stubborn")}
    try:
        mikro.run("stop")
        polite, stubborn = app("polite"), app("stubborn")
        assert (out / "polite").read_text() == "got-TERM\n"  # SIGTERM reached the process
        assert polite["State"]["ExitCode"] == 0
        assert stubborn["State"]["ExitCode"] == 137  # killed after its 2 s grace
        started, finished = (stubborn["State"][k] for k in ("StartedAt", "FinishedAt"))
        assert finished > started
        assert {pod: app(pod)["Id"] for pod in ids} == ids  # stopped, kept: the same containers
    finally:
        mikro.run("start")
    wait_for(lambda: pod_phase(mikro, "polite") == "Running", 60, what="polite back after start")
    assert app("polite")["Id"] == ids["polite"]  # started in place, not recreated
    mikro.kubectl("delete", "pod", "polite", "stubborn", "--now", check=False)


def test_the_cli_does_not_import_docker_for_workload_commands(mikro: Mikro) -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from mikro.cli.main import main\n"
        "try:\n    main(['kubectl', 'get', 'pods', '-A'])\nexcept SystemExit:\n    pass\n"
        "print('docker' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], env=mikro.env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout + result.stderr


def test_bind_address_publishes_node_ports_on_that_address_only(tmp_path: Path, images: None) -> None:
    m = Mikro(tmp_path / "home", cluster_name("bind"))
    remove_cluster_leftovers(m.cluster)
    try:
        m.run("start", "--bind-address", "127.0.0.2")
        manifest = """
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: web, image: "hello-ip:1", ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 8080}]
"""
        m.run("apply", "-f", "-", "--wait", input=manifest, timeout=120)
        port = m.json("svc", "web")["spec"]["ports"][0]["nodePort"]

        def answer() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.2:{port}/", timeout=3) as resp:
                    return resp.read().decode()
            except OSError:
                return ""

        assert wait_for(lambda: answer().startswith("Hello from web"), 30, what="the NodePort on 127.0.0.2")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=3).close()
    finally:
        m.run("stop", check=False)
        remove_cluster_leftovers(m.cluster)
