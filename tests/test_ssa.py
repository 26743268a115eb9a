"""Server-side apply and managedFields over real HTTP against an in-process API server.

The request shapes are what kubectl 1.32 sends for `apply --server-side` (PATCH,
application/apply-patch+yaml, fieldManager=kubectl, force=false, fieldValidation=Strict) and
for client-side apply (fieldManager=kubectl-client-side-apply)."""

from __future__ import annotations

import copy
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mikro.api import managedfields
from mikro.api.registry import Registry
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.controlplane import bootstrap
from tests.test_apiserver import TOKEN, PlainClient

DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "ssa", "labels": {"a": "b"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "ssa"}},
        "template": {
            "metadata": {"labels": {"app": "ssa"}},
            "spec": {"containers": [{"name": "web", "image": "hello-ip:1", "ports": [{"containerPort": 8080}]}]},
        },
    },
}
PATH = "/apis/apps/v1/namespaces/default/deployments/ssa"
# What kube-apiserver records for DEPLOY applied by kubectl --server-side.
FIELDS = {
    "f:metadata": {"f:labels": {"f:a": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:containers": {
                    'k:{"name":"web"}': {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {'k:{"containerPort":8080,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                    }
                }
            },
        },
    },
}


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[PlainClient]:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    httpd = serve(registry, TOKEN, None)
    httpd.ready.set()
    yield PlainClient("127.0.0.1", httpd.server_address[1], TOKEN)
    httpd.stopping.set()
    httpd.shutdown()


def call(
    server: PlainClient, method: str, path: str, body: Any = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    data = None if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "kubectl/v1.32.4 (linux/amd64)"}
    if data is not None:
        headers["Content-Type"] = content_type
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    return resp.status, json.loads(payload) if payload else None


def ssa(server: PlainClient, obj: dict[str, Any], manager: str = "kubectl", force: bool = False) -> tuple[int, Any]:
    query = f"?fieldManager={manager}&force={'true' if force else 'false'}&fieldValidation=Strict"
    return call(server, "PATCH", PATH + query, yaml.safe_dump(obj), "application/apply-patch+yaml")


def test_apply_creates_and_records_kubectls_field_set(server: PlainClient) -> None:
    code, obj = ssa(server, DEPLOY)
    assert code == 201
    [entry] = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == ("kubectl", "Apply", "apps/v1")
    assert entry["fieldsType"] == "FieldsV1" and entry["fieldsV1"] == FIELDS
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"  # defaults still apply, unowned
    code, again = ssa(server, DEPLOY)
    assert code == 200 and again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_fields_v1_round_trip() -> None:
    paths = managedfields.decode(FIELDS)
    assert ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"web"}') in paths
    assert managedfields.encode(paths) == FIELDS
    assert managedfields.path_string(("f:spec", "f:containers", 'k:{"name":"web"}', "f:image")) == (
        '.spec.containers[name="web"].image'
    )


def test_conflict_with_an_update_manager_names_it_and_force_takes_over(server: PlainClient) -> None:
    ssa(server, DEPLOY)
    code, _ = call(
        server,
        "PATCH",
        PATH + "?fieldManager=kubectl-client-side-apply",
        {"spec": {"replicas": 3}},
        "application/strategic-merge-patch+json",
    )
    assert code == 200
    code, status = ssa(server, DEPLOY)
    assert code == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    code, obj = ssa(server, DEPLOY, force=True)
    assert code == 200 and obj["spec"]["replicas"] == 2
    assert [e["manager"] for e in obj["metadata"]["managedFields"]] == ["kubectl"]


def test_same_value_is_shared_not_a_conflict(server: PlainClient) -> None:
    ssa(server, DEPLOY)
    other = copy.deepcopy(DEPLOY)
    other["metadata"]["labels"] = {"c": "d"}
    code, obj = ssa(server, other, manager="other")
    assert code == 200 and obj["metadata"]["labels"] == {"a": "b", "c": "d"}
    managers = {e["manager"] for e in obj["metadata"]["managedFields"]}
    assert managers == {"kubectl", "other"}


def test_fields_no_longer_applied_are_removed_unless_owned_by_another(server: PlainClient) -> None:
    ssa(server, DEPLOY)
    dropped = copy.deepcopy(DEPLOY)
    del dropped["metadata"]["labels"]
    del dropped["spec"]["template"]["spec"]["containers"][0]["ports"]
    code, obj = ssa(server, dropped)
    assert code == 200
    assert "a" not in (obj["metadata"].get("labels") or {})
    assert "ports" not in obj["spec"]["template"]["spec"]["containers"][0]
    # a label another manager also applies stays when this one stops applying it
    ssa(server, DEPLOY)
    shared = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa", "labels": {"a": "b"}}}
    ssa(server, shared, manager="other")
    code, obj = ssa(server, dropped)
    assert obj["metadata"]["labels"] == {"a": "b"}


def test_field_manager_required_and_strict_unknown_fields(server: PlainClient) -> None:
    code, status = call(server, "PATCH", PATH, yaml.safe_dump(DEPLOY), "application/apply-patch+yaml")
    assert code == 422 and "fieldManager: Required value: is required for apply patch" in status["message"]
    bad = copy.deepcopy(DEPLOY)
    bad["spec"]["strategy"] = {"maxSurge": 1}
    code, status = ssa(server, bad)
    assert code == 400 and status["message"] == (
        "failed to create typed patch object (default/ssa; apps/v1, Kind=Deployment): "
        ".spec.strategy.maxSurge: field not declared in schema"
    )


def test_updates_record_their_manager_and_keep_others(server: PlainClient) -> None:
    code, created = call(
        server, "POST", "/apis/apps/v1/namespaces/default/deployments?fieldManager=kubectl-client-side-apply", DEPLOY
    )
    assert code == 201
    [entry] = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("kubectl-client-side-apply", "Update")
    assert "f:progressDeadlineSeconds" in entry["fieldsV1"]["f:spec"]  # the updater owns the defaults it stored
    # a PUT without managedFields (kubectl replace of a file) keeps them; its manager is its user agent
    replaced = copy.deepcopy(DEPLOY)
    replaced["spec"]["replicas"] = 5
    code, obj = call(server, "PUT", PATH, replaced)
    assert code == 200
    managers = {e["manager"]: e for e in obj["metadata"]["managedFields"]}
    assert set(managers) == {"kubectl-client-side-apply", "kubectl"}
    assert managers["kubectl"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in managers["kubectl-client-side-apply"]["fieldsV1"]["f:spec"]


def test_lightkube_apply(server: PlainClient, tmp_path: Path) -> None:
    """lightkube's apply (PATCH apply-patch+yaml with fieldManager and force) creates, then
    updates, over the same HTTP API."""
    from lightkube import Client, KubeConfig
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "m", "cluster": {"server": f"http://{server.host}:{server.port}"}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "m", "context": {"cluster": "m", "user": "u", "namespace": "default"}}],
                "current-context": "m",
            }
        )
    )
    client = Client(KubeConfig.from_file(str(kubeconfig)))
    cm = ConfigMap(metadata=ObjectMeta(name="lk", namespace="default"), data={"a": "1"})
    created = client.apply(cm, field_manager="lightkube")
    assert created.data == {"a": "1"} and [m.manager for m in created.metadata.managedFields] == ["lightkube"]
    cm.data = {"b": "2"}
    updated = client.apply(cm, field_manager="lightkube")
    assert updated.data == {"b": "2"}  # the field no longer applied is gone
