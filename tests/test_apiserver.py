"""The API server over real HTTP (in-process, no Docker): auth, discovery, verbs, Status
errors, selectors, watch and Table output."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.cli.client import Client
from mikro.controlplane import bootstrap
from mikro.errors import ApiError

TOKEN = "test-token"
DEPLOY = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"tier": "front"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "hello-ip:1", "env": [{"name": "A", "value": "1"}]}]},
        },
    },
}


class PlainClient(Client):
    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[PlainClient]:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    server = serve(registry, TOKEN, None)
    server.ready.set()
    yield PlainClient("127.0.0.1", server.server_address[1], TOKEN)
    server.stopping.set()
    server.shutdown()


def raw(
    api: PlainClient, method: str, path: str, token: str | None = TOKEN, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(api.host, api.port, timeout=5)
    conn.request(method, path, headers={**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})})
    resp = conn.getresponse()
    body = resp.read()
    return resp.status, json.loads(body) if body and body[:1] in b"{[" else body


def test_token_required(api: PlainClient) -> None:
    code, body = raw(api, "GET", "/api/v1/namespaces", token=None)
    assert code == 401 and body["kind"] == "Status" and body["reason"] == "Unauthorized"
    code, _ = raw(api, "GET", "/api/v1/namespaces", token="wrong")
    assert code == 401
    assert raw(api, "GET", "/readyz", token=None)[0] == 200


def test_discovery(api: PlainClient) -> None:
    assert raw(api, "GET", "/version")[1]["major"] == "1"
    assert raw(api, "GET", "/api")[1]["versions"] == ["v1"]
    groups = {g["name"] for g in raw(api, "GET", "/apis")[1]["groups"]}
    assert {"apps", "networking.k8s.io", "batch"} <= groups
    core = {r["name"] for r in raw(api, "GET", "/api/v1")[1]["resources"]}
    assert {"pods", "services", "endpoints", "configmaps", "secrets", "events", "namespaces", "pods/log"} <= core
    apps = {r["name"]: r for r in raw(api, "GET", "/apis/apps/v1")[1]["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"] and "deployments/scale" in apps


def test_default_namespace_exists(api: PlainClient) -> None:
    names = [n["metadata"]["name"] for n in api.list(BY_KIND["Namespace"])["items"]]
    assert "default" in names


def test_create_get_list_and_defaults(api: PlainClient) -> None:
    created = api.create(BY_KIND["Deployment"], "default", DEPLOY)
    assert created["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert created["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    got = api.get(BY_KIND["Deployment"], "default", "web")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(ApiError) as err:
        api.create(BY_KIND["Deployment"], "default", DEPLOY)
    assert err.value.code == 409 and err.value.reason == "AlreadyExists"
    with pytest.raises(ApiError) as err:
        api.get(BY_KIND["Deployment"], "default", "nope")
    assert err.value.code == 404 and err.value.message == 'deployments.apps "nope" not found'


def test_invalid_is_422_with_causes(api: PlainClient) -> None:
    bad = json.loads(json.dumps(DEPLOY))
    bad["spec"]["replicas"] = -1
    with pytest.raises(ApiError) as err:
        api.create(BY_KIND["Deployment"], "default", bad)
    assert err.value.code == 422 and err.value.reason == "Invalid"
    assert err.value.details["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.replicas",
            "message": "Invalid value: -1: must be greater than or equal to 0",
        }
    ]
    assert api.list(BY_KIND["Deployment"], "default")["items"] == []


def test_dry_run_stores_nothing(api: PlainClient) -> None:
    api.create(BY_KIND["Deployment"], "default", DEPLOY, dry_run=True)
    assert api.list(BY_KIND["Deployment"], "default")["items"] == []


def test_update_with_stale_version_conflicts(api: PlainClient) -> None:
    created = api.create(BY_KIND["Deployment"], "default", DEPLOY)
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    fresh = dict(created, spec=dict(created["spec"], replicas=3))
    updated = api.request("PUT", path, fresh)
    assert updated["metadata"]["generation"] == 2
    with pytest.raises(ApiError) as err:
        api.request("PUT", path, dict(created, spec=dict(created["spec"], replicas=4)))
    assert err.value.code == 409


def test_patches(api: PlainClient) -> None:
    api.create(BY_KIND["Deployment"], "default", DEPLOY)
    res = BY_KIND["Deployment"]
    api.patch(
        res,
        "default",
        "web",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}}}},
        kind="application/strategic-merge-patch+json",
    )
    ctr = api.get(res, "default", "web")["spec"]["template"]["spec"]["containers"][0]
    assert ctr["image"] == "hello-ip:1" and ctr["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    api.patch(res, "default", "web", {"metadata": {"labels": {"tier": None}}})
    assert "tier" not in (api.get(res, "default", "web")["metadata"].get("labels") or {})
    scale = api.patch(res, "default", "web", {"spec": {"replicas": 5}}, sub="scale")
    assert scale["kind"] == "Scale" and api.get(res, "default", "web")["spec"]["replicas"] == 5


def test_selectors(api: PlainClient) -> None:
    cm = BY_KIND["ConfigMap"]
    for name, labels in (("a", {"env": "prod", "app": "x"}), ("b", {"env": "dev"}), ("c", {})):
        api.create(cm, "default", {"metadata": {"name": name, "labels": labels}})

    def names(**query: str) -> list[str]:
        return [o["metadata"]["name"] for o in api.list(cm, "default", **query)["items"]]

    assert names(labelSelector="env=prod") == ["a"]
    assert names(labelSelector="env!=prod") == ["b", "c"]
    assert names(labelSelector="env in (prod,dev),!app") == ["b"]
    assert names(fieldSelector="metadata.name=c") == ["c"]
    assert names(fieldSelector="metadata.namespace=default,metadata.name!=a") == ["b", "c"]


def test_service_gets_a_cluster_ip_and_node_port(api: PlainClient) -> None:
    svc = api.create(
        BY_KIND["Service"],
        "default",
        {
            "metadata": {"name": "s"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    assert svc["spec"]["clusterIP"].startswith("10.152.") and 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    taken = svc["spec"]["ports"][0]["nodePort"]
    with pytest.raises(ApiError) as err:
        api.create(
            BY_KIND["Service"],
            "default",
            {"metadata": {"name": "t"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": taken}]}},
        )
    assert err.value.code == 422 and "already allocated" in err.value.message


def test_namespace_must_exist(api: PlainClient) -> None:
    with pytest.raises(ApiError) as err:
        api.create(BY_KIND["ConfigMap"], "nope", {"metadata": {"name": "a"}})
    assert err.value.code == 404 and 'namespaces "nope" not found' in err.value.message


def test_table_output_for_kubectl(api: PlainClient) -> None:
    api.create(BY_KIND["Deployment"], "default", DEPLOY)
    code, table = raw(
        api,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
    )
    assert code == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Up-To-Date",
        "Available",
        "Age",
    ]
    assert table["rows"][0]["cells"][:2] == ["web", "0/2"]


def test_watch_streams_changes(api: PlainClient) -> None:
    cm = BY_KIND["ConfigMap"]
    events: list[dict[str, Any]] = []
    # Watching from the list's version makes the stream independent of when the reader
    # thread connects: changes made before it did are replayed from the store's history.
    since = api.list(cm, "default")["metadata"]["resourceVersion"]

    def reader() -> None:
        query = {"watch": "true", "timeoutSeconds": "3", "resourceVersion": since}
        for line in api.stream("/api/v1/namespaces/default/configmaps", query):
            events.append(json.loads(line))
            if len(events) == 3:
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    api.create(cm, "default", {"metadata": {"name": "w"}, "data": {"a": "1"}})
    api.patch(cm, "default", "w", {"data": {"a": "2"}})
    api.delete(cm, "default", "w")
    thread.join(5)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["data"] == {"a": "2"}


def test_delete_and_orphan(api: PlainClient) -> None:
    cm = BY_KIND["ConfigMap"]
    owner = api.create(cm, "default", {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    api.create(
        BY_KIND["Pod"],
        "default",
        {"metadata": {"name": "p", "ownerReferences": [ref]}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    )
    api.delete(cm, "default", "owner", propagation="Orphan")
    with pytest.raises(ApiError):
        api.get(cm, "default", "owner")
    assert api.get(BY_KIND["Pod"], "default", "p")["metadata"]["ownerReferences"] == []
    code, _ = raw(api, "DELETE", "/api/v1/namespaces/default")
    assert code == 403
