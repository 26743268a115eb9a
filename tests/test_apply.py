"""`mikro apply` (client-side apply) against an in-process API server: kubectl's annotation byte
for byte, the three-way patch, strict validation and all-or-nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.cli import applyplan, kubectl, manifest
from mikro.controlplane import bootstrap
from mikro.errors import ApiError
from tests.test_apiserver import TOKEN, PlainClient

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {tier: a}
  annotations: {odd: "a<b>&c ünï"}
spec:
  replicas: 2
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: web
        image: hello-ip:1
        ports:
        - containerPort: 8080
        env:
        - {name: A, value: "1"}
"""
# What real kubectl 1.32 stored for MANIFEST (kubectl apply -f, namespace default).
KUBECTL_ANNOTATION = (
    '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{"odd":"a\\u003cb\\u003e\\u0026c ünï"},'
    '"labels":{"tier":"a"},"name":"app","namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":'
    '{"app":"app"}},"template":{"metadata":{"labels":{"app":"app"}},"spec":{"containers":[{"env":[{"name":"A",'
    '"value":"1"}],"image":"hello-ip:1","name":"web","ports":[{"containerPort":8080}]}]}}}}\n'
)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[PlainClient]:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    httpd = serve(registry, TOKEN, None)
    httpd.ready.set()
    yield PlainClient("127.0.0.1", httpd.server_address[1], TOKEN)
    httpd.stopping.set()
    httpd.shutdown()


def apply(server: PlainClient, tmp_path: Path, text: str, validate: str = "strict") -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    docs = manifest.load([str(path)])
    return [kubectl.qualified_name(o) for o in kubectl.apply_documents(server, docs, "default", validate)]


def test_annotation_is_kubectls_byte_for_byte() -> None:
    obj = manifest.parse_text(MANIFEST, "m.yaml")[0].obj
    obj["metadata"]["namespace"] = "default"
    assert applyplan.last_applied(obj) == KUBECTL_ANNOTATION
    # the annotation itself is not part of what it records; an emptied map stays
    sent = applyplan.annotated({"kind": "ConfigMap", "metadata": {"name": "a"}})
    assert sent["metadata"]["annotations"][applyplan.LAST_APPLIED] == (
        '{"kind":"ConfigMap","metadata":{"annotations":{},"name":"a"}}\n'
    )
    assert applyplan.last_applied(sent) == sent["metadata"]["annotations"][applyplan.LAST_APPLIED]


def test_created_unchanged_configured(server: PlainClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apply(server, tmp_path, MANIFEST)
    apply(server, tmp_path, MANIFEST)
    apply(server, tmp_path, MANIFEST.replace("replicas: 2", "replicas: 3"))
    assert capsys.readouterr().out.splitlines() == [
        "deployment.apps/app created",
        "deployment.apps/app unchanged",
        "deployment.apps/app configured",
    ]
    got = server.get(BY_KIND["Deployment"], "default", "app")
    assert got["spec"]["replicas"] == 3
    assert got["metadata"]["annotations"][applyplan.LAST_APPLIED] == KUBECTL_ANNOTATION.replace(
        '"replicas":2', '"replicas":3'
    )


def test_annotation_written_by_kubectl_is_unchanged(
    server: PlainClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An object kubectl applied: the manifest plus kubectl's annotation, as kubectl sends it.
    obj = manifest.parse_text(MANIFEST, "m.yaml")[0].obj
    obj["metadata"]["annotations"][applyplan.LAST_APPLIED] = KUBECTL_ANNOTATION
    server.create(BY_KIND["Deployment"], "default", obj)
    apply(server, tmp_path, MANIFEST)
    assert capsys.readouterr().out == "deployment.apps/app unchanged\n"


def test_field_removed_from_manifest_is_removed(server: PlainClient, tmp_path: Path) -> None:
    apply(server, tmp_path, MANIFEST)
    apply(server, tmp_path, MANIFEST.replace("  labels: {tier: a}\n", ""))
    got = server.get(BY_KIND["Deployment"], "default", "app")
    assert "labels" not in got["metadata"] or "tier" not in got["metadata"]["labels"]
    # a field set by someone else (not in the last applied) is kept
    server.patch(BY_KIND["Deployment"], "default", "app", {"metadata": {"labels": {"other": "x"}}})
    apply(server, tmp_path, MANIFEST.replace("replicas: 2", "replicas: 1"))
    assert server.get(BY_KIND["Deployment"], "default", "app")["metadata"]["labels"] == {"tier": "a", "other": "x"}


def test_three_way_ignores_server_defaults() -> None:
    desired = {"spec": {"containers": [{"name": "a", "image": "x"}]}}
    current = {"spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "IfNotPresent"}]}}
    assert applyplan.three_way(desired, desired, current) == {}
    changed = copy.deepcopy(desired)
    changed["spec"]["containers"][0]["image"] = "y"
    assert applyplan.three_way(desired, changed, current) == changed
    assert applyplan.three_way({"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 2, "c": 3}) == {"b": None}


SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetport: 8080
"""


def test_strict_by_default_names_file_and_field(server: PlainClient, tmp_path: Path) -> None:
    with pytest.raises(ApiError) as err:
        apply(server, tmp_path, SERVICE)
    assert err.value.message == (
        f'error when creating "{tmp_path / "m.yaml"}": Service in version "v1" cannot be handled as a Service: '
        'strict decoding error: unknown field "spec.ports[0].targetport"'
    )
    assert err.value.reason == "BadRequest"
    with pytest.raises(ApiError):
        server.get(BY_KIND["Service"], "default", "web")


def test_misplaced_max_surge_is_refused(server: PlainClient, tmp_path: Path) -> None:
    text = MANIFEST.replace("  replicas: 2\n", "  replicas: 2\n  strategy:\n    maxSurge: 1\n")
    with pytest.raises(ApiError, match='unknown field "spec.strategy.maxSurge"'):
        apply(server, tmp_path, text)


def test_warn_and_ignore(server: PlainClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apply(server, tmp_path, SERVICE, validate="warn")
    captured = capsys.readouterr()
    assert captured.err == 'Warning: unknown field "spec.ports[0].targetport"\n'
    assert captured.out == "service/web created\n"
    stored = server.get(BY_KIND["Service"], "default", "web")
    assert "targetport" not in json.dumps(stored["spec"])
    apply(server, tmp_path, SERVICE.replace("name: web", "name: web2"), validate="false")
    assert capsys.readouterr().err == ""


NAMESPACED = """\
apiVersion: v1
kind: Namespace
metadata:
  name: x
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: x
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 80
    nodePort: 30080
"""


def test_new_namespace_and_a_refused_object_apply_nothing(
    server: PlainClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = {
        "metadata": {"name": "taken"},
        "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80, "nodePort": 30080}]},
    }
    server.create(BY_KIND["Service"], "default", taken)
    with pytest.raises(ApiError, match="provided port is already allocated"):
        apply(server, tmp_path, NAMESPACED)
    assert capsys.readouterr().out == ""
    with pytest.raises(ApiError) as err:
        server.get(BY_KIND["Namespace"], None, "x")
    assert err.value.code == 404
    # with the port free, the same file applies
    server.delete(BY_KIND["Service"], "default", "taken")
    apply(server, tmp_path, NAMESPACED)
    assert capsys.readouterr().out == "namespace/x created\nservice/web created\n"


def test_merge_diff_removes_fields_dropped_from_the_manifest() -> None:
    old = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 2}}
    new = {"metadata": {"labels": {"a": "1"}}, "spec": {}}
    assert kubectl.merge_diff(old, new) == {"metadata": {"labels": {"b": None}}, "spec": {"replicas": None}}


def test_mikro_apply_manages_fields_as_kubectl_client_side_apply(server: PlainClient, tmp_path: Path) -> None:
    apply(server, tmp_path, MANIFEST)
    got = server.get(BY_KIND["Deployment"], "default", "app")
    assert [(e["manager"], e["operation"]) for e in got["metadata"]["managedFields"]] == [
        ("kubectl-client-side-apply", "Update")
    ]
    server.patch(BY_KIND["Deployment"], "default", "app", {"spec": {"paused": True}})
    managers = {e["manager"] for e in server.get(BY_KIND["Deployment"], "default", "app")["metadata"]["managedFields"]}
    assert managers == {"kubectl-client-side-apply", "mikro"}
