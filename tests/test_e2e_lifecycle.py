"""The cluster's day against real Docker: start, status, stop; bad input; real kubectl and the
official Python client against mikro's API."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import Mikro, cluster_name, remove_cluster_leftovers

pytestmark = pytest.mark.docker

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: '1'\n"


def test_start_status_stop_status(tmp_path: Path, images: None) -> None:
    m = Mikro(tmp_path / "home", cluster_name("day"))
    remove_cluster_leftovers(m.cluster)
    try:
        started = m.run("start")
        assert re.match(rf"Started mikro \({m.cluster}\) in \d+\.\d+s: API at https://127\.0\.0\.1:\d+", started.stdout)
        assert (tmp_path / "home").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "home" / "cluster.json").stat().st_mode & 0o777 == 0o600
        assert m.run("start").stdout.strip() == "mikro is already running"
        status = m.run("status")
        assert status.stdout.startswith("mikro is running\n") and "ingress" in status.stdout
        disabled = status.stdout.split("disabled:\n", 1)[1].splitlines()
        assert {line.split()[0] for line in disabled} >= {"dashboard", "ingress", "metrics-server"}
        assert "running: true" in m.run("status", "--format", "yaml").stdout
        assert m.run("status", "--format", "short").stdout.splitlines()[0] == "mikro is running"
        assert "default" in m.kubectl("get", "ns").stdout
        assert m.run("stop").stdout.strip() == "Stopped."
        assert m.run("stop").stdout.strip() == "mikro is not running"
        stopped = m.run("status", check=False)
        assert stopped.returncode == 1 and "mikro is not running" in stopped.stdout and "mikro start" in stopped.stdout
        applied = m.run("apply", "-f", "-", input=CM.format(name="x"), check=False)
        assert applied.returncode == 1
        assert applied.stderr.strip() == "error: mikro is not running; start it with `mikro start`"
        # state survives: the ConfigMap applied before a restart is still there
        m.run("start")
        m.run("apply", "-f", "-", input=CM.format(name="kept"))
        m.run("stop")
        m.run("start")
        assert m.json("configmap", "kept")["data"] == {"a": "1"}
        refused = m.run("reset", check=False, input="n\n")
        assert refused.returncode == 1 and "reset cancelled" in refused.stderr
        assert m.run("reset", "--yes").stdout.strip() == f"Cluster {m.cluster} reset."
        import docker

        client = docker.from_env()
        label = {"label": f"io.mikro/cluster={m.cluster}"}
        assert client.api.containers(all=True, filters=label) == [] and client.networks.list(filters=label) == []
        m.run("start")
        assert m.kubectl("get", "configmap", "kept", check=False).returncode == 1  # the objects are gone too
    finally:
        m.run("stop", check=False)
        remove_cluster_leftovers(m.cluster)


def test_api_needs_the_token(mikro: Mikro) -> None:
    info = json.loads((mikro.home / "apiserver.json").read_text())
    import ssl

    context = ssl.create_default_context(cafile=str(mikro.home / "pki" / "ca.crt"))
    url = f"https://127.0.0.1:{info['port']}/api/v1/namespaces/default/pods"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, context=context, timeout=5)
    assert err.value.code == 401 and json.loads(err.value.read())["reason"] == "Unauthorized"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {info['token']}"})
    with urllib.request.urlopen(request, context=context, timeout=5) as resp:
        assert json.loads(resp.read())["kind"] == "PodList"


def test_bad_input_is_refused_whole(mikro: Mikro, tmp_path: Path) -> None:
    good = CM.format(name="good-one")
    bad = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: -1\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: other}}\n"
        "    spec:\n      containers: [{name: web, image: hello-ip:1}]\n"
    )
    path = tmp_path / "stack.yml"
    path.write_text(good + "---\n" + bad)
    result = mikro.run("apply", "-f", str(path), check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f'error: {path}: document 2 (Deployment "web"): spec.replicas: Invalid value: -1')
    assert "selector` does not match template `labels`" in result.stderr
    assert mikro.kubectl("get", "configmap", "good-one", check=False).returncode == 1  # nothing applied
    cases = {
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n": "YAML syntax error at line",
        "apiVersion: v1\nkind: Widget\nmetadata: {name: x}\n": 'no matches for kind "Widget"',
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_Valid}\n": 'metadata.name: Invalid value: "Not_Valid"',
        "just a string\n": "expected a mapping",
        CM.format(name="d") + "---\n" + CM.format(name="d"): "also document 1",
    }
    for text, message in cases.items():
        path.write_text(text)
        result = mikro.run("apply", "-f", str(path), check=False)
        assert result.returncode == 1 and message in result.stderr and result.stderr.startswith("error: "), text
    missing = mikro.run("apply", "-f", str(tmp_path / "nope.yml"), check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    path.write_text("# nothing here\n---\n")
    empty = mikro.run("apply", "-f", str(path))
    assert "nothing to apply" in empty.stderr


def test_apply_configured_unchanged_and_delete(mikro: Mikro, tmp_path: Path) -> None:
    path = tmp_path / "cm.yml"
    path.write_text(CM.format(name="settings"))
    assert mikro.run("apply", "-f", str(path)).stdout.strip() == "configmap/settings created"
    assert mikro.run("apply", "-f", str(path)).stdout.strip() == "configmap/settings unchanged"
    path.write_text(CM.format(name="settings").replace("'1'", "'2'"))
    assert mikro.run("apply", "-f", str(path)).stdout.strip() == "configmap/settings configured"
    assert mikro.json("cm", "settings")["data"] == {"a": "2"}
    assert mikro.run("delete", "-f", str(path)).stdout.strip() == 'configmap "settings" deleted'
    gone = mikro.kubectl("get", "cm", "settings", check=False)
    assert gone.returncode == 1 and 'configmaps "settings" not found' in gone.stderr


def test_real_kubectl_and_python_client(mikro: Mikro, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(mikro.run("config").stdout)
    deploy = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: kc}\nspec:\n  replicas: 1\n"
        "  selector: {matchLabels: {app: kc}}\n  template:\n    metadata: {labels: {app: kc}}\n"
        "    spec: {containers: [{name: web, image: 'hello-ip:1'}]}\n"
    )
    mikro.run("apply", "-f", "-", input=deploy)

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60
        )

    ns = kubectl("get", "namespaces")
    assert ns.returncode == 0 and re.search(r"^default\s+Active", ns.stdout, re.M), ns.stderr
    everything = kubectl("get", "pods,services,deployments", "-A")
    assert everything.returncode == 0, everything.stderr
    assert re.search(r"^default\s+deployment\.apps/kc\s", everything.stdout, re.M)
    as_yaml = kubectl("get", "deployment", "kc", "-o", "yaml")
    assert as_yaml.returncode == 0 and "kind: Deployment" in as_yaml.stdout and "name: kc" in as_yaml.stdout
    pods = kubectl("get", "pods", "-A")
    assert pods.returncode == 0 and "READY" in pods.stdout.splitlines()[0]

    from kubernetes import client, config

    api_client = config.new_client_from_config(str(kubeconfig))
    names = [d.metadata.name for d in client.AppsV1Api(api_client).list_namespaced_deployment("default").items]
    assert names == ["kc"]
    assert any(n.metadata.name == "default" for n in client.CoreV1Api(api_client).list_namespace().items)
    started = time.monotonic()
    while time.monotonic() - started < 60:
        dep = client.AppsV1Api(api_client).read_namespaced_deployment("kc", "default")
        if dep.status.ready_replicas == 1:
            break
        time.sleep(0.3)
    assert dep.status.ready_replicas == 1


def test_two_clusters_do_not_touch_each_other(mikro: Mikro, tmp_path: Path) -> None:
    import docker

    other = Mikro(tmp_path / "other", cluster_name("other"))
    remove_cluster_leftovers(other.cluster)
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: mine}\nspec:\n  containers: [{name: c, image: 'hello-ip:1'}]\n"
    try:
        other.run("start")
        mikro.run("apply", "-f", "-", "--wait", input=pod, timeout=120)
        other.run("apply", "-f", "-", "--wait", input=pod.replace("mine", "theirs"), timeout=120)
        ours_listed = {p["metadata"]["name"] for p in mikro.pods()}  # this module's cluster has others too
        assert "mine" in ours_listed and "theirs" not in ours_listed
        assert [p["metadata"]["name"] for p in other.pods()] == ["theirs"]
        first = json.loads((mikro.home / "cluster.json").read_text())
        second = json.loads((other.home / "cluster.json").read_text())
        assert first["subnet"] != second["subnet"] and first["port"] != second["port"]
        other.run("reset", "--yes")
        client = docker.from_env()
        ours = client.api.containers(filters={"label": f"io.mikro/cluster={mikro.cluster}"})
        mine = [c for c in ours if c["Labels"]["io.mikro/name"] == "mine"]
        assert len(mine) == 2 and all(c["State"] == "running" for c in mine)
        assert not any(c["Labels"]["io.mikro/name"] == "theirs" for c in ours)
        assert mikro.kubectl("get", "pod", "mine").stdout.splitlines()[1].split()[2] == "Running"
    finally:
        other.run("stop", check=False)
        remove_cluster_leftovers(other.cluster)
        mikro.kubectl("delete", "pod", "mine", "--now", check=False)


def test_inspect_writes_an_archive_without_secret_values(mikro: Mikro, tmp_path: Path) -> None:
    import base64
    import tarfile

    value = "s3cr3t-" + tmp_path.name
    secret = f"apiVersion: v1\nkind: Secret\nmetadata: {{name: inspected}}\nstringData: {{password: {value}}}\n"
    mikro.run("apply", "-f", "-", input=secret)
    archive = tmp_path / "inspect.tar.gz"
    result = mikro.run("inspect", "-o", str(archive))
    assert result.stdout.startswith(f"Inspecting mikro ({mikro.cluster})")
    assert result.stdout.rstrip().endswith(f"Report archive: {archive}")
    with tarfile.open(archive) as tar:
        contents = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert {"controlplane.log", "objects.yaml", "containers.json", "versions.json", "report.txt"} <= set(contents)
    assert b"name: inspected" in contents["objects.yaml"]  # the Secret is there, by name
    for blob in contents.values():
        assert value.encode() not in blob and base64.b64encode(value.encode()) not in blob
    assert json.loads(contents["versions.json"])["docker"]["ApiVersion"]
