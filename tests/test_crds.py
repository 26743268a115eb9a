"""CustomResourceDefinitions over real HTTP (in-process server, no Docker): registration,
discovery, CRUD, schema validation, defaulting, pruning, subresources, printer columns,
versions and the deletion of a CRD's objects."""

from __future__ import annotations

import copy
import http.client
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mikro.api import crds, resources
from mikro.api.registry import Registry
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.controllers.crdfinalizer import CRDFinalizerController
from mikro.controllers.helpers import ClusterApi
from mikro.controlplane import bootstrap
from mikro.errors import ApiError
from tests.test_apiserver import TOKEN, PlainClient

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
            "categories": ["gadgets"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
                },
                "additionalPrinterColumns": [
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["color"],
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                },
                            },
                            "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                        },
                    }
                },
            },
            {
                "name": "v1beta1",
                "served": True,
                "storage": False,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            },
        ],
    },
}
BASE = "/apis/example.com/v1/namespaces/default/widgets"


def widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"color": "red", **spec},
    }


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[PlainClient]:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    server = serve(registry, TOKEN, None)
    server.ready.set()
    client = PlainClient("127.0.0.1", server.server_address[1], TOKEN)
    client.registry = registry  # type: ignore[attr-defined]  # for the controller passes
    yield client
    server.stopping.set()
    server.shutdown()
    resources.DYNAMIC.clear()


def finalize(api: PlainClient) -> None:
    """One pass of the CRD finalizer controller, as the control plane runs it."""
    CRDFinalizerController().sync(ClusterApi(api.registry), datetime.now(UTC))  # type: ignore[attr-defined]


@pytest.fixture()
def widgets(api: PlainClient) -> PlainClient:
    api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    return api


def test_crd_established_and_discovered(widgets: PlainClient) -> None:
    crd = widgets.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"Established": "True", "NamesAccepted": "True"}
    assert crd["status"]["acceptedNames"]["listKind"] == "WidgetList"
    groups = {g["name"]: g for g in widgets.request("GET", "/apis")["groups"]}
    assert [v["version"] for v in groups["example.com"]["versions"]] == ["v1", "v1beta1"]
    found = {r["name"]: r for r in widgets.request("GET", "/apis/example.com/v1")["resources"]}
    assert found["widgets"]["kind"] == "Widget" and found["widgets"]["shortNames"] == ["wd"]
    assert found["widgets"]["categories"] == ["gadgets"] and found["widgets"]["singularName"] == "widget"
    assert found["widgets/status"]["kind"] == "Widget" and found["widgets/scale"]["kind"] == "Scale"
    beta = {r["name"] for r in widgets.request("GET", "/apis/example.com/v1beta1")["resources"]}
    assert beta == {"widgets"}
    assert resources.lookup("wd") is not None and resources.lookup("widget.example.com") is not None


def test_crud_defaulting_and_pruning(widgets: PlainClient) -> None:
    created = widgets.request("POST", BASE, {**widget(port="http"), "junk": 1, "status": {"replicas": 9}})
    assert created["spec"]["replicas"] == 1  # the schema's default
    assert "junk" not in created  # pruned
    assert "status" not in created  # status is written through /status
    body = widget("w2", extra={"free": {"form": True}}, unknown="x")
    created = widgets.request("POST", BASE, body)
    assert created["spec"]["extra"] == {"free": {"form": True}} and "unknown" not in created["spec"]
    listed = widgets.request("GET", BASE)
    assert listed["kind"] == "WidgetList" and [o["metadata"]["name"] for o in listed["items"]] == ["w1", "w2"]
    patched = widgets.request(
        "PATCH", f"{BASE}/w1", {"spec": {"replicas": 3}}, content_type="application/merge-patch+json"
    )
    assert patched["spec"]["replicas"] == 3 and patched["metadata"]["generation"] == 2
    patched = widgets.request(
        "PATCH",
        f"{BASE}/w1",
        [{"op": "replace", "path": "/spec/color", "value": "blue"}],
        content_type="application/json-patch+json",
    )
    assert patched["spec"]["color"] == "blue"
    with pytest.raises(ApiError) as err:
        widgets.request(
            "PATCH", f"{BASE}/w1", {"spec": {"replicas": 4}}, content_type="application/strategic-merge-patch+json"
        )
    assert err.value.code == 415
    assert "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml" in str(err.value)
    widgets.request("DELETE", f"{BASE}/w2")
    assert [o["metadata"]["name"] for o in widgets.request("GET", BASE)["items"]] == ["w1"]


def test_schema_violations(widgets: PlainClient) -> None:
    with pytest.raises(ApiError) as err:
        widgets.request("POST", BASE, widget(replicas="string"))
    assert err.value.code == 422
    assert str(err.value).endswith(
        'Widget.example.com "w1" is invalid: spec.replicas: Invalid value: "string": '
        'spec.replicas in body must be of type integer: "string"'
    )
    with pytest.raises(ApiError) as err:
        widgets.request("POST", BASE, widget(color="green", replicas=-1))
    assert 'spec.color: Unsupported value: "green": supported values: "red", "blue"' in str(err.value)
    assert "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0" in str(
        err.value
    )
    with pytest.raises(ApiError) as err:
        widgets.request(
            "POST", BASE, {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}, "spec": {}}
        )
    assert "spec.color: Required value" in str(err.value)
    with pytest.raises(ApiError) as err:
        widgets.request("POST", BASE, widget(port=[1]))
    assert err.value.code == 422 and "spec.port" in str(err.value)
    widgets.request("POST", BASE, widget(port=8080))
    with pytest.raises(ApiError) as err:
        widgets.request("PATCH", f"{BASE}/w1", {"spec": {"replicas": "x"}}, content_type="application/merge-patch+json")
    assert err.value.code == 422 and "spec.replicas in body must be of type integer" in str(err.value)
    assert widgets.request("GET", BASE)["items"][0]["spec"]["replicas"] == 1


def test_status_and_scale_subresources(widgets: PlainClient) -> None:
    widgets.request("POST", BASE, widget(replicas=2))
    obj = widgets.request("GET", f"{BASE}/w1")
    obj["status"] = {"replicas": 2}
    obj["spec"]["replicas"] = 5
    updated = widgets.request("PUT", f"{BASE}/w1/status", obj)
    assert updated["status"] == {"replicas": 2} and updated["spec"]["replicas"] == 2
    obj = widgets.request("GET", f"{BASE}/w1")
    obj["status"] = {"replicas": 7}
    obj["spec"]["color"] = "blue"
    updated = widgets.request("PUT", f"{BASE}/w1", obj)
    assert updated["status"] == {"replicas": 2} and updated["spec"]["color"] == "blue"
    scale = widgets.request("GET", f"{BASE}/w1/scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2 and scale["status"]["replicas"] == 2
    scaled = widgets.request(
        "PATCH", f"{BASE}/w1/scale", {"spec": {"replicas": 4}}, content_type="application/merge-patch+json"
    )
    assert scaled["spec"]["replicas"] == 4
    assert widgets.request("GET", f"{BASE}/w1")["spec"]["replicas"] == 4


def test_printer_columns(widgets: PlainClient) -> None:
    widgets.request("POST", BASE, widget(replicas=3))
    table = widgets.request("GET", BASE, accept="application/json;as=Table;v=v1;g=meta.k8s.io")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Replicas", "Color", "Age"]
    cells = table["rows"][0]["cells"]
    assert cells[:3] == ["w1", 3, "red"] and cells[3].endswith("s")


def test_json_path() -> None:
    obj = {"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    assert crds.json_path(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert crds.json_path(obj, ".status.conditions[0].type") == ["A"]
    assert crds.json_path(obj, ".status.missing") == []


def test_versions_share_objects(widgets: PlainClient) -> None:
    widgets.request("POST", BASE, widget())
    beta = widgets.request("GET", "/apis/example.com/v1beta1/namespaces/default/widgets/w1")
    assert beta["apiVersion"] == "example.com/v1beta1" and beta["spec"]["color"] == "red"
    listed = widgets.request("GET", "/apis/example.com/v1beta1/widgets")
    assert [o["apiVersion"] for o in listed["items"]] == ["example.com/v1beta1"]
    assert widgets.request("GET", f"{BASE}/w1")["apiVersion"] == "example.com/v1"


def test_watch(widgets: PlainClient) -> None:
    widgets.request("POST", BASE, widget())
    conn = http.client.HTTPConnection(widgets.host, widgets.port, timeout=5)
    conn.request("GET", f"{BASE}?watch=true&timeoutSeconds=1", headers={"Authorization": f"Bearer {TOKEN}"})
    events = [json.loads(line) for line in conn.getresponse().read().splitlines() if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w1")]


def test_deleting_the_crd_deletes_its_objects_honouring_their_finalizers(widgets: PlainClient) -> None:
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
    widgets.request("POST", BASE, widget())
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.com/keep"]
    widgets.request("POST", BASE, held)
    widgets.request("DELETE", crd_path)
    crd = widgets.request("GET", crd_path)
    assert crd["metadata"]["deletionTimestamp"] and crd["metadata"]["finalizers"] == [
        "customresourcecleanup.apiextensions.k8s.io"
    ]
    terminating = {c["type"]: c for c in crd["status"]["conditions"]}["Terminating"]
    assert (terminating["status"], terminating["reason"]) == ("True", "InstanceDeletionPending")
    with pytest.raises(ApiError) as err:
        widgets.request("POST", BASE, widget("late"))
    assert (err.value.code, err.value.message) == (
        405,
        "create not allowed while custom resource definition is terminating",
    )

    finalize(widgets)  # w1 goes; `held` is marked and waits for its own finalizer's controller
    names = [o["metadata"]["name"] for o in widgets.request("GET", BASE)["items"]]
    assert names == ["held"] and widgets.request("GET", f"{BASE}/held")["metadata"]["deletionTimestamp"]
    crd = widgets.request("GET", crd_path)
    assert {c["type"]: c for c in crd["status"]["conditions"]}["Terminating"]["reason"] == "InstanceDeletionInProgress"

    widgets.request(
        "PATCH", f"{BASE}/held", {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json"
    )
    finalize(widgets)
    with pytest.raises(ApiError) as err:
        widgets.request("GET", crd_path)
    assert err.value.code == 404
    with pytest.raises(ApiError) as err:
        widgets.request("GET", BASE)
    assert err.value.code == 404
    assert "example.com" not in {g["name"] for g in widgets.request("GET", "/apis")["groups"]}
    widgets.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)
    assert widgets.request("GET", BASE)["items"] == []


def test_registration_rebuilt_from_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    registry = Registry(store, "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    registry.create(resources.BY_KIND["CustomResourceDefinition"], "", copy.deepcopy(CRD))
    resources.DYNAMIC.clear()
    Registry(store, "10.152.128.0/17", "mikro")
    try:
        assert resources.by_group_version_plural("example.com", "v1", "widgets") is not None
    finally:
        resources.DYNAMIC.clear()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["metadata"].update(name="x"),
            'metadata.name: Invalid value: "x": must be spec.names.plural+"."+spec.group',
        ),
        (
            lambda c: c["spec"]["versions"][1].update(storage=True),
            "must have exactly one version marked as storage version",
        ),
        (
            lambda c: c["spec"]["versions"][0].update(storage=False),
            "must have exactly one version marked as storage version",
        ),
        (
            lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"].update(
                bad={"type": "integer", "minimum": "zero"}
            ),
            "spec.versions[0].schema.openAPIV3Schema",
        ),
        (
            lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"].update(loose={}),
            "spec.versions[0].schema.openAPIV3Schema.properties[loose].type: Required value",
        ),
        (lambda c: c["spec"].update(scope="Global"), 'spec.scope: Unsupported value: "Global"'),
    ],
)
def test_bad_crds(api: PlainClient, change: Any, message: str) -> None:
    crd = copy.deepcopy(CRD)
    change(crd)
    with pytest.raises(ApiError) as err:
        api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert err.value.code == 422 and message in str(err.value)
    assert resources.by_group_version_plural("example.com", "v1", "widgets") is None


def test_cel_rules_at_the_root_are_enforced_and_uncompilable_ones_warned(api: PlainClient) -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] = [
        {"rule": "self.metadata.name.startsWith('w')", "message": "names start with w"},
        {"rule": "self.spec.?color.orValue('') != ''"},  # optionals: cel-go has them, celpy not
    ]
    api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert any("x-kubernetes-validations[1].rule: mikro cannot compile this CEL rule" in str(w) for w in api.warnings)
    api.request("POST", BASE, widget("w1"))
    with pytest.raises(ApiError) as err:
        api.request("POST", BASE, widget("x1"))
    assert err.value.code == 422
    assert err.value.message == 'Widget.example.com "x1" is invalid: <nil>: Invalid value: "object": names start with w'


def test_status_is_checked_and_without_the_subresource_written_with_the_object(widgets: PlainClient) -> None:
    widgets.request("POST", BASE, widget())
    obj = widgets.request("GET", f"{BASE}/w1")
    obj["status"] = {"replicas": "two"}
    with pytest.raises(ApiError) as err:
        widgets.request("PUT", f"{BASE}/w1/status", obj)
    assert err.value.code == 422 and "status.replicas in body must be of type integer" in str(err.value)
    beta = "/apis/example.com/v1beta1/namespaces/default/widgets"
    crd = copy.deepcopy(CRD)
    crd["metadata"]["name"] = "gizmos.example.com"
    crd["spec"]["names"] = {"plural": "gizmos", "kind": "Gizmo"}
    crd["spec"]["versions"] = [crd["spec"]["versions"][1] | {"storage": True}]
    widgets.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    gizmos = beta.replace("widgets", "gizmos")
    widgets.request("POST", gizmos, {"metadata": {"name": "g"}, "spec": {"a": 1}, "status": {"ok": True}})
    got = widgets.request("GET", f"{gizmos}/g")
    assert got["status"] == {"ok": True} and got["spec"] == {"a": 1}  # preserve-unknown-fields at the root
    got["status"] = {"ok": False}
    assert widgets.request("PUT", f"{gizmos}/g", got)["status"] == {"ok": False}
    with pytest.raises(ApiError) as err:
        widgets.request("GET", f"{gizmos}/g/status")
    assert err.value.code == 404


def test_server_side_apply_of_a_custom_resource(widgets: PlainClient) -> None:
    body = widget(replicas=2)
    path = f"{BASE}/w1?fieldManager=tester"
    created = widgets.request("PATCH", path, body, content_type="application/apply-patch+yaml")
    assert created["spec"] == {"color": "red", "replicas": 2}
    body["spec"]["replicas"] = 4
    assert widgets.request("PATCH", path, body, content_type="application/apply-patch+yaml")["spec"]["replicas"] == 4


def test_protobuf_bodies_are_refused_for_custom_resources(widgets: PlainClient) -> None:
    conn = http.client.HTTPConnection(widgets.host, widgets.port, timeout=5)
    conn.request(
        "POST",
        BASE,
        body=b"k8s\x00\x0a\x00",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert conn.getresponse().status == 415


def test_namespace_deletion_removes_custom_resources(tmp_path: Path) -> None:
    from mikro.controllers.manager import Controllers
    from tests.test_controllers import settle

    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    try:
        ctl = Controllers(registry)
        registry.create(resources.BY_KIND["CustomResourceDefinition"], "", copy.deepcopy(CRD))
        registry.create(resources.BY_KIND["Namespace"], "", {"metadata": {"name": "tmp"}})
        res = resources.by_group_version_plural("example.com", "v1", "widgets")
        assert res is not None
        registry.create(res, "tmp", widget())
        registry.delete(resources.BY_KIND["Namespace"], "", "tmp")
        settle(ctl)
        assert registry.list(res, "tmp")[0] == []
        assert registry.store.find(resources.BY_KIND["Namespace"], "", "tmp") is None
    finally:
        resources.DYNAMIC.clear()


def test_openapi_v3_publishes_the_schema(widgets: PlainClient) -> None:
    index = widgets.request("GET", "/openapi/v3")["paths"]
    assert "apis/example.com/v1" in index and "apis/example.com/v1beta1" in index
    doc = widgets.request("GET", "/" + index["apis/example.com/v1"]["serverRelativeURL"].lstrip("/").split("?")[0])
    schema = doc["components"]["schemas"]["com.example.v1.Widget"]
    assert schema["properties"]["spec"]["properties"]["color"]["enum"] == ["red", "blue"]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": "example.com", "version": "v1", "kind": "Widget"}]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    assert "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status" in doc["paths"]
    patch = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"]
    # (kubectl apply sends a strategic merge patch to a kind whose patch operation accepts one)
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    widgets.request("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
    finalize(widgets)
    assert "apis/example.com/v1" not in widgets.request("GET", "/openapi/v3")["paths"]


def test_unknown_fields_under_field_validation(widgets: PlainClient) -> None:
    with pytest.raises(ApiError) as err:
        widgets.request("POST", BASE, widget(junk=1), query={"fieldValidation": "Strict"})
    assert err.value.code == 400
    assert 'strict decoding error: unknown field "spec.junk"' in str(err.value)
    created = widgets.request("POST", BASE, widget(junk=1), query={"fieldValidation": "Warn"})
    assert "junk" not in created["spec"]
    assert any('unknown field "spec.junk"' in str(w) for w in widgets.warnings)
    beta = {"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "b"}, "spec": {"any": 1}}
    kept = widgets.request(
        "POST", "/apis/example.com/v1beta1/namespaces/default/widgets", beta, query={"fieldValidation": "Strict"}
    )
    assert kept["spec"] == {"any": 1}  # that version preserves unknown fields


def test_the_preferred_version_is_kubernetes_highest(api: PlainClient) -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"].reverse()  # v1beta1 listed first
    api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    group = api.request("GET", "/apis/example.com")
    assert group["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    assert crds.version_priority("v2") < crds.version_priority("v1") < crds.version_priority("v1beta2")
    assert crds.version_priority("v1alpha1") < crds.version_priority("foo")
