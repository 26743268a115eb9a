"""The CLI in-process (click's CliRunner) against a real API server over TLS in a thread: no
Docker, so the commands' own code is measured; exact output and exit codes as a user sees them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.cli.main import kubectl_group, main
from mikro.controllers.manager import Controllers
from tests.inprocess import api_server

CLUSTER = "mkt-inproc"
STACK = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "hello-ip:1", ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 8080}]
"""


@pytest.fixture()
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    with api_server(tmp_path, monkeypatch, CLUSTER) as registry:
        yield registry


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def kubectl(*args: str) -> Result:
    return CliRunner().invoke(kubectl_group, list(args), catch_exceptions=False)


def lines(result: Result) -> list[list[str]]:
    return [line.split() for line in result.stdout.strip().splitlines()]


def test_apply_reports_created_then_unchanged_then_configured(cluster: Registry) -> None:
    first = run("apply", "-f", "-", input=STACK)
    assert (first.exit_code, first.stdout) == (0, "deployment.apps/web created\nservice/web created\n")
    again = run("apply", "-f", "-", input=STACK)
    assert (again.exit_code, again.stdout) == (0, "deployment.apps/web unchanged\nservice/web unchanged\n")
    changed = run("apply", "-f", "-", input=STACK.replace("replicas: 2", "replicas: 3"))
    assert (changed.exit_code, changed.stdout) == (0, "deployment.apps/web configured\nservice/web unchanged\n")
    stored = cluster.get(BY_KIND["Deployment"], "default", "web")
    assert stored["spec"]["replicas"] == 3


def test_apply_removes_a_field_the_manifest_no_longer_has(cluster: Registry) -> None:
    with_label = STACK.replace(
        "metadata: {name: web}\nspec:\n  replicas", "metadata: {name: web, labels: {tier: a}}\nspec:\n  replicas", 1
    )
    run("apply", "-f", "-", input=with_label)
    assert cluster.get(BY_KIND["Deployment"], "default", "web")["metadata"]["labels"] == {"tier": "a"}
    assert run("apply", "-f", "-", input=STACK).exit_code == 0
    assert "tier" not in (cluster.get(BY_KIND["Deployment"], "default", "web")["metadata"].get("labels") or {})


def test_apply_of_a_bad_document_stores_nothing(cluster: Registry, tmp_path: Path) -> None:
    bad = tmp_path / "stack.yml"
    bad.write_text(STACK + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n")
    result = run("apply", "-f", str(bad))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and str(bad) in result.stderr and "Bad_Name" in result.stderr
    assert "Traceback" not in result.stderr
    assert cluster.list(BY_KIND["Deployment"], "default")[0] == []


def test_get_prints_kubectl_columns_and_names(cluster: Registry) -> None:
    run("apply", "-f", "-", input=STACK)
    table = lines(kubectl("get", "deployments"))
    assert table[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1][:4] == ["web", "0/2", "0", "0"]
    services = lines(kubectl("get", "svc", "web"))
    assert services[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert services[1][:2] == ["web", "ClusterIP"] and services[1][3:5] == ["<none>", "8080/TCP"]
    assert kubectl("get", "deploy,svc", "-o", "name").stdout == "deployment.apps/web\nservice/web\n"
    as_json = json.loads(kubectl("get", "deployment", "web", "-o", "json").stdout)
    assert as_json["kind"] == "Deployment" and as_json["spec"]["replicas"] == 2
    as_yaml = yaml.safe_load(kubectl("get", "svc", "web", "-o", "yaml").stdout)
    assert as_yaml["spec"]["ports"][0]["port"] == 8080


def test_get_errors_read_as_kubectl(cluster: Registry) -> None:
    missing = kubectl("get", "pods", "nosuch")
    assert missing.exit_code == 1
    assert missing.stderr == 'error: from server (NotFound): pods "nosuch" not found\n'
    unknown = kubectl("get", "frobs")
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: ") and "frobs" in unknown.stderr
    empty = kubectl("get", "pods")
    assert empty.exit_code == 0 and "No resources found in default namespace." in empty.stdout + empty.stderr


def test_scale_and_delete(cluster: Registry) -> None:
    run("apply", "-f", "-", input=STACK)
    scaled = kubectl("scale", "deployment/web", "--replicas=5")
    assert (scaled.exit_code, scaled.stdout) == (0, "deployment.apps/web scaled\n")
    assert cluster.get(BY_KIND["Deployment"], "default", "web")["spec"]["replicas"] == 5
    deleted = run("delete", "svc", "web")
    assert (deleted.exit_code, deleted.stdout) == (0, 'service "web" deleted\n')
    assert kubectl("get", "svc", "web").exit_code == 1


def test_rollout_history_counts_revisions(cluster: Registry) -> None:
    run("apply", "-f", "-", input=STACK)
    controllers = Controllers(cluster)
    controllers.sync_all()
    run("apply", "-f", "-", input=STACK.replace("hello-ip:1", "hello-ip:2"))
    controllers.sync_all()
    history = lines(kubectl("rollout", "history", "deployment/web"))
    assert history[0] == ["deployment.apps/web"]
    assert [row[0] for row in history[2:]] == ["1", "2"]


def test_status_and_config_while_running(cluster: Registry) -> None:
    status = run("status")
    assert status.exit_code == 0 and status.stdout.startswith("mikro is running")
    kubeconfig: dict[str, Any] = yaml.safe_load(run("config").stdout)
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    assert server.startswith("https://127.0.0.1:") and kubeconfig["current-context"]
    assert kubeconfig["users"][0]["user"]["token"] == "tok"


@pytest.mark.parametrize("wide", [False, True])
def test_get_through_the_servers_table_prints_what_the_objects_give(cluster: Registry, wide: bool) -> None:
    from mikro.cli import printers

    run("apply", "-f", "-", input=STACK)
    for i in range(3):
        cluster.create(BY_KIND["ConfigMap"], "default", {"metadata": {"name": f"c{i}", "labels": {"n": str(i)}}, "data": {"a": "1"}})
    for kind, target in [("ConfigMap", "cm"), ("Deployment", "deploy"), ("Service", "svc"), ("Namespace", "ns")]:
        res = BY_KIND[kind]
        args = ["get", target, *(["-o", "wide"] if wide else []), *(["-A"] if res.namespaced else [])]
        printed = lines(kubectl(*args))
        items = cluster.list(res)[0]
        headers, rows = printers.rows(kind, items, wide)
        if res.namespaced:
            headers = ["NAMESPACE", *headers]
            rows = [[o["metadata"]["namespace"], *r] for o, r in zip(items, rows, strict=True)]
        want = [line.split() for line in printers.format_table(headers, rows).splitlines()]
        age = headers.index("AGE")
        assert [r[:age] + r[age + 1 :] for r in printed] == [r[:age] + r[age + 1 :] for r in want], kind
    selected = lines(kubectl("get", "cm", "-l", "n in (1,2)"))
    assert [r[0] for r in selected[1:]] == ["c1", "c2"]
