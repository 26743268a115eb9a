"""OpenAPI documents and field validation, over real HTTP against an in-process API server."""

from __future__ import annotations

import copy
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mikro.api import fieldvalidation, openapi
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND, RESOURCES
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.controlplane import bootstrap
from mikro.errors import ApiError
from tests.test_apiserver import DEPLOY, TOKEN, PlainClient, raw

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetport": 8080}]},
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


def send(
    server: PlainClient, method: str, path: str, body: Any, content_type: str = "application/json"
) -> tuple[int, Any, list[str]]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type})
    resp = conn.getresponse()
    payload = resp.read()
    return resp.status, json.loads(payload) if payload else None, resp.headers.get_all("Warning") or []


def test_v3_index_lists_every_group_version(server: PlainClient) -> None:
    code, index = raw(server, "GET", "/openapi/v3")
    assert code == 200
    assert {
        "api/v1",
        "apis/apiextensions.k8s.io/v1",
        "apis/apps/v1",
        "apis/autoscaling/v2",
        "apis/batch/v1",
        "apis/networking.k8s.io/v1",
        "apis/storage.k8s.io/v1",
        "apis/rbac.authorization.k8s.io/v1",
        "apis/policy/v1",
        "apis/coordination.k8s.io/v1",
        "apis/scheduling.k8s.io/v1",
        "apis/discovery.k8s.io/v1",
        "apis/admissionregistration.k8s.io/v1",
    } == set(
        index["paths"]
    )
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")


def test_v3_document_has_schemas_and_patch_operations_kubectl_looks_for(server: PlainClient) -> None:
    code, doc = raw(server, "GET", "/openapi/v3/apis/apps/v1")
    assert code == 200 and doc["openapi"].startswith("3.")
    deployment = doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert "fieldValidation" in {p["name"] for p in patch["parameters"] if p["in"] == "query"}
    containers = doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name" and containers["x-kubernetes-patch-strategy"] == "merge"
    # every reference resolves inside the document
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in doc["components"]["schemas"], ref


def test_every_served_kind_has_an_upstream_schema() -> None:
    for res in RESOURCES:
        assert openapi.schema_of(res.kind) is not None, res.kind


def test_v2_document(server: PlainClient) -> None:
    code, doc = raw(server, "GET", "/openapi/v2", headers={"Accept": "application/json"})
    assert code == 200 and doc["swagger"] == "2.0"
    assert doc["definitions"]["io.k8s.api.core.v1.Service"]["x-kubernetes-group-version-kind"][0]["kind"] == "Service"
    assert "/api/v1/namespaces/{namespace}/services/{name}" in doc["paths"]
    assert raw(server, "GET", "/openapi/v3/apis/nope/v1")[0] == 404


def test_prune_reports_paths_as_upstream() -> None:
    pruned, unknown = fieldvalidation.unknown_fields(copy.deepcopy(SERVICE), "Service")
    assert unknown == ["spec.ports[0].targetport"]
    assert pruned["spec"]["ports"] == [{"port": 80}]
    deploy = copy.deepcopy(DEPLOY)
    deploy["spec"]["strategy"] = {"maxSurge": 1}
    deploy["metadata"]["labels"]["x"] = "free-form map values are fine"
    _, unknown = fieldvalidation.unknown_fields(deploy, "Deployment")
    assert unknown == ["spec.strategy.maxSurge"]


def test_strict_refuses_unknown_field_on_create(server: PlainClient) -> None:
    path = "/api/v1/namespaces/default/services?fieldValidation=Strict"
    code, body, _ = send(server, "POST", path, SERVICE)
    assert code == 400 and body["reason"] == "BadRequest"
    assert body["message"] == (
        'Service in version "v1" cannot be handled as a Service: '
        'strict decoding error: unknown field "spec.ports[0].targetport"'
    )
    with pytest.raises(ApiError):
        server.get(BY_KIND["Service"], "default", "web")


def test_misplaced_max_surge_refused_under_strict(server: PlainClient) -> None:
    deploy = copy.deepcopy(DEPLOY)
    deploy["spec"]["strategy"] = {"maxSurge": 1}
    code, body, _ = send(server, "POST", "/apis/apps/v1/namespaces/default/deployments?fieldValidation=Strict", deploy)
    assert code == 400 and 'unknown field "spec.strategy.maxSurge"' in body["message"]


def test_warn_is_the_default_and_drops_the_field(server: PlainClient) -> None:
    code, body, warnings = send(server, "POST", "/api/v1/namespaces/default/services", SERVICE)
    assert code == 201
    assert warnings == ['299 - "unknown field \\"spec.ports[0].targetport\\""']
    assert "targetport" not in json.dumps(server.get(BY_KIND["Service"], "default", "web"))


def test_ignore_drops_silently(server: PlainClient) -> None:
    code, body, warnings = send(server, "POST", "/api/v1/namespaces/default/services?fieldValidation=Ignore", SERVICE)
    assert code == 201 and warnings == []
    assert "targetport" not in json.dumps(body)


def test_strict_patch_is_refused_and_warn_patch_drops(server: PlainClient) -> None:
    server.create(BY_KIND["Deployment"], "default", DEPLOY)
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    patch = {"spec": {"strategy": {"maxSurge": 1}}}
    code, body, _ = send(server, "PATCH", path + "?fieldValidation=Strict", patch, "application/merge-patch+json")
    assert code == 422 and body["message"].endswith('strict decoding error: unknown field "spec.strategy.maxSurge"')
    code, body, warnings = send(
        server, "PATCH", path + "?fieldValidation=Warn", patch, "application/strategic-merge-patch+json"
    )
    assert code == 200 and "maxSurge" not in body["spec"]["strategy"]
    assert warnings == ['299 - "unknown field \\"spec.strategy.maxSurge\\""']


def test_duplicate_fields_found_with_their_path() -> None:
    raw_body = b'{"metadata": {"name": "a", "name": "b"}, "spec": {"ports": [{"port": 1, "port": 2}]}}'
    assert fieldvalidation.find_duplicates(raw_body) == ["metadata.name", "spec.ports[0].port"]


def test_bad_directive_is_a_bad_request(server: PlainClient) -> None:
    code, body, _ = send(server, "POST", "/api/v1/namespaces/default/services?fieldValidation=Loose", SERVICE)
    assert code == 400 and 'Unsupported value: "Loose"' in body["message"]


def test_all_category_in_discovery(server: PlainClient) -> None:
    listed = raw(server, "GET", "/api/v1")[1]["resources"] + raw(server, "GET", "/apis/apps/v1")[1]["resources"]
    in_all = {r["name"] for r in listed if "all" in r.get("categories", [])}
    assert {"pods", "services", "replicationcontrollers", "deployments", "replicasets", "statefulsets"} <= in_all
    assert "configmaps" not in in_all and "secrets" not in in_all


def test_access_reviews_allow_the_single_user(server: PlainClient) -> None:
    body = {"spec": {"resourceAttributes": {"verb": "create", "group": "apps", "resource": "deployments"}}}
    code, review, _ = send(server, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body)
    assert code == 201 and review["status"]["allowed"] is True
    assert review["spec"] == body["spec"] and review["kind"] == "SelfSubjectAccessReview"
    code, who, _ = send(server, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {})
    assert code == 201 and who["status"]["userInfo"]["username"] == "admin"
    code, bad, _ = send(server, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {"spec": {}})
    assert code == 422
    # a protobuf body (what kubectl sends) is decoded and answered
    from mikro.api import kubeproto

    encoded = kubeproto.encode(
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {}, **body}
    )
    code, review, _ = send(
        server,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        encoded,
        "application/vnd.kubernetes.protobuf",
    )
    assert code == 201 and review["status"]["allowed"] is True
    groups = {g["name"] for g in raw(server, "GET", "/apis")[1]["groups"]}
    assert {"authorization.k8s.io", "authentication.k8s.io"} <= groups


def test_every_kind_with_a_status_has_the_key(server: PlainClient) -> None:
    code, svc, _ = send(
        server,
        "POST",
        "/api/v1/namespaces/default/services",
        {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}},
    )
    assert code == 201 and svc["status"] == {}
    code, cm, _ = send(server, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "c"}})
    assert code == 201 and "status" not in cm


def test_paging_with_limit_and_continue(server: PlainClient) -> None:
    for i in range(5):
        server.create(BY_KIND["ConfigMap"], "default", {"metadata": {"name": f"c{i}"}})
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        query = "?limit=2" + (f"&continue={token}" if token else "")
        code, body = raw(server, "GET", "/api/v1/namespaces/default/configmaps" + query)
        assert code == 200 and len(body["items"]) <= 2
        seen += [o["metadata"]["name"] for o in body["items"]]
        pages += 1
        token = body["metadata"].get("continue", "")
        if not token:
            break
        assert body["metadata"]["remainingItemCount"] == 5 - len(seen)
    assert seen == ["c0", "c1", "c2", "c3", "c4"] and pages == 3
    code, body = raw(server, "GET", "/api/v1/namespaces/default/configmaps?continue=bogus")
    assert code == 400 and "continue key is not valid" in body["message"]


def test_tables_include_object_as_asked(server: PlainClient) -> None:
    server.create(BY_KIND["ConfigMap"], "default", {"metadata": {"name": "t"}, "data": {"a": "1"}})
    table_accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    path = "/api/v1/namespaces/default/configmaps"
    _, table = raw(server, "GET", path, headers=table_accept)
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    _, table = raw(server, "GET", path + "?includeObject=Object", headers=table_accept)
    assert table["rows"][0]["object"]["data"] == {"a": "1"} and table["rows"][0]["object"]["kind"] == "ConfigMap"
    _, table = raw(server, "GET", path + "?includeObject=None", headers=table_accept)
    assert "object" not in table["rows"][0]
    code, _ = raw(server, "GET", path + "?includeObject=All", headers=table_accept)
    assert code == 400


def _fields(data: bytes) -> list[tuple[int, Any]]:
    """A minimal protobuf reader: (field number, value) pairs, length-delimited values as bytes."""
    out: list[tuple[int, Any]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            out.append((field, varint()))
        elif wire == 2:
            length = varint()
            out.append((field, data[i : i + length]))
            i += length
        elif wire == 1:
            out.append((field, data[i : i + 8]))
            i += 8
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def test_openapi_v2_as_protobuf_for_client_go(server: PlainClient) -> None:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    accept = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # what client-go sends
    conn.request("GET", "/openapi/v2", headers={"Authorization": f"Bearer {TOKEN}", "Accept": accept})
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    document = dict(_fields(body))
    assert document[1] == b"2.0"  # Document.swagger
    definitions = {}
    for _, named in _fields(document[9]):  # Definitions.additional_properties: NamedSchema
        pairs = dict(_fields(named))
        definitions[pairs[1].decode()] = pairs[2]
    deployment = _fields(definitions["io.k8s.api.apps.v1.Deployment"])
    extensions = {}
    for field, value in deployment:
        if field == 31:  # Schema.vendor_extension: NamedAny{name, Any{yaml = 2}}
            pairs = dict(_fields(value))
            extensions[pairs[1].decode()] = json.loads(dict(_fields(pairs[2]))[2])
    assert extensions["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    code, _ = raw(server, "GET", "/openapi/v3/apis/apps/v1", headers={"Accept": accept})
    assert code == 406


def test_duplicate_field_in_a_json_body(server: PlainClient) -> None:
    body = b'{"metadata": {"name": "dup", "name": "dup"}, "data": {"a": "1"}}'
    code, status, _ = send(server, "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", body)
    assert code == 400 and status["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.name"'
    )
    code, _, warnings = send(server, "POST", "/api/v1/namespaces/default/configmaps", body)
    assert code == 201 and warnings == ['299 - "duplicate field \\"metadata.name\\""']


def test_a_new_pod_is_still_pending(server: PlainClient) -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "hello-ip:1"}]}}
    code, created, _ = send(server, "POST", "/api/v1/namespaces/default/pods", pod)
    assert code == 201 and created["status"]["phase"] == "Pending"
