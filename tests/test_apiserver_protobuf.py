"""The API server speaking protobuf over real HTTP (in-process, no Docker): bodies decoded by
Content-Type, answers encoded by Accept, Status errors, lists, watch frames, 415 for kinds that
have no protobuf form."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mikro.api import kubeproto
from mikro.api.registry import Registry
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.controlplane import bootstrap

TOKEN = "test-token"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "protobuf"
PB = kubeproto.MEDIA_TYPE
GO_ACCEPT = "application/vnd.kubernetes.protobuf, */*"  # what client-go's typed clients send


@pytest.fixture()
def port(tmp_path: Path) -> Iterator[int]:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    server = serve(registry, TOKEN, None)
    server.ready.set()
    yield server.server_address[1]
    server.stopping.set()
    server.shutdown()
    server.server_close()


def call(
    port: int, method: str, path: str, body: bytes | None = None, ctype: str = PB, accept: str = GO_ACCEPT
) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": accept}
    if body is not None:
        headers["Content-Type"] = ctype
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type") or "", data


def test_create_from_kubectls_bytes_and_answer_in_protobuf(port: int) -> None:
    body = (FIXTURES / "configmap.bin").read_bytes()
    code, ctype, data = call(port, "POST", "/api/v1/namespaces/default/configmaps", body)
    assert (code, ctype) == (201, PB)
    created = kubeproto.decode(data)
    assert created["metadata"]["name"] == "cfg" and created["metadata"]["namespace"] == "default"
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert created["metadata"]["creationTimestamp"].endswith("Z")
    assert created["data"] == {"a": "b", "greeting": "hello world"}

    code, ctype, data = call(port, "GET", "/api/v1/namespaces/default/configmaps/cfg")
    assert (code, ctype) == (200, PB) and kubeproto.decode(data) == created
    code, ctype, data = call(port, "GET", "/api/v1/namespaces/default/configmaps/cfg", accept="application/json")
    assert (code, ctype) == (200, "application/json") and json.loads(data) == created


def test_every_captured_kubectl_body_creates_its_object(port: int) -> None:
    paths = {
        "ConfigMap": "/api/v1/namespaces/default/configmaps",
        "Secret": "/api/v1/namespaces/default/secrets",
        "Namespace": "/api/v1/namespaces",
        "ServiceAccount": "/api/v1/namespaces/default/serviceaccounts",
        "Service": "/api/v1/namespaces/default/services",
        "Deployment": "/apis/apps/v1/namespaces/default/deployments",
        "Job": "/apis/batch/v1/namespaces/default/jobs",
        "CronJob": "/apis/batch/v1/namespaces/default/cronjobs",
        "Ingress": "/apis/networking.k8s.io/v1/namespaces/default/ingresses",
    }
    for fixture in sorted(FIXTURES.glob("*.bin")):
        if fixture.name.startswith("helm-"):
            continue
        sent = kubeproto.decode(fixture.read_bytes())
        code, ctype, data = call(port, "POST", paths[sent["kind"]], fixture.read_bytes())
        assert (code, ctype) == (201, PB), (fixture.name, data)
        created = kubeproto.decode(data)
        assert created["kind"] == sent["kind"] and created["metadata"]["name"] == sent["metadata"]["name"]
    code, _, data = call(port, "GET", "/apis/apps/v1/namespaces/default/deployments/idle", accept="application/json")
    assert json.loads(data)["spec"]["replicas"] == 0


def test_helms_release_secret_and_delete_options(port: int) -> None:
    secrets = "/api/v1/namespaces/default/secrets"
    code, _, data = call(port, "POST", secrets, (FIXTURES / "helm-install-release-secret.bin").read_bytes())
    assert code == 201
    created = kubeproto.decode(data)
    assert created["metadata"]["labels"]["status"] == "pending-install"
    code, _, data = call(port, "GET", secrets + "?labelSelector=owner%3Dhelm%2Cname%3Drel")
    assert [s["metadata"]["name"] for s in kubeproto.decode(data)["items"]] == ["sh.helm.release.v1.rel.v1"]
    options = (FIXTURES / "helm-uninstall-delete-options.bin").read_bytes()
    code, _, _ = call(port, "DELETE", secrets + "/sh.helm.release.v1.rel.v1", options)
    assert code == 200
    assert call(port, "GET", secrets + "/sh.helm.release.v1.rel.v1")[0] == 404


def test_update_list_and_delete_in_protobuf(port: int) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "1"}}
    code, _, data = call(port, "POST", "/api/v1/namespaces/default/configmaps", kubeproto.encode(cm))
    assert code == 201
    current = kubeproto.decode(data)
    current["data"] = {"k": "2"}
    code, ctype, data = call(port, "PUT", "/api/v1/namespaces/default/configmaps/a", kubeproto.encode(current))
    assert (code, ctype) == (200, PB) and kubeproto.decode(data)["data"] == {"k": "2"}

    code, ctype, data = call(port, "GET", "/api/v1/namespaces/default/configmaps")
    listing = kubeproto.decode(data)
    assert (code, ctype) == (200, PB)
    assert listing["kind"] == "ConfigMapList" and listing["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in listing["items"] if i["metadata"]["name"] == "a"] == ["a"]

    options = kubeproto.encode({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"})
    code, _, data = call(port, "DELETE", "/api/v1/namespaces/default/configmaps/a", options)
    assert code == 200
    code, _, _ = call(port, "GET", "/api/v1/namespaces/default/configmaps/a")
    assert code == 404


def test_errors_are_protobuf_status(port: int) -> None:
    code, ctype, data = call(port, "GET", "/api/v1/namespaces/default/configmaps/missing")
    status = kubeproto.decode(data)
    assert (code, ctype) == (404, PB)
    assert status["kind"] == "Status" and status["reason"] == "NotFound" and status["code"] == 404
    assert status["message"] == 'configmaps "missing" not found'


def test_protobuf_body_of_a_kind_without_protobuf_is_415(port: int) -> None:
    unknown = kubeproto.schema().message(kubeproto.UNKNOWN)()
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind = "example.com/v1", "Widget"
    code, ctype, data = call(
        port, "POST", "/api/v1/namespaces/default/configmaps", b"k8s\x00" + unknown.SerializeToString()
    )
    assert (code, ctype) == (415, PB)
    status = kubeproto.decode(data)
    assert status["reason"] == "UnsupportedMediaType"
    assert "application/json" in status["message"]


def test_garbage_protobuf_is_400_and_nothing_is_created(port: int) -> None:
    code, _, data = call(port, "POST", "/api/v1/namespaces/default/configmaps", b"k8s\x00\x0a\xff\xff\xff")
    assert code == 400 and kubeproto.decode(data)["reason"] == "BadRequest"
    code, _, data = call(port, "POST", "/api/v1/namespaces/default/configmaps", b'{"kind":"ConfigMap"}')
    assert code == 400 and "magic" in kubeproto.decode(data)["message"]
    code, _, data = call(port, "GET", "/api/v1/namespaces/default/configmaps", accept="application/json")
    assert json.loads(data)["items"] == []


def read_watch(port: int, path: str, accept: str) -> tuple[str, bytes]:
    code, ctype, data = call(port, "GET", path, accept=accept)
    assert code == 200
    return ctype, data


def test_watch_streams_protobuf_frames(port: int) -> None:
    for name in ("w1", "w2"):
        cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
        assert call(port, "POST", "/api/v1/namespaces/default/configmaps", kubeproto.encode(cm))[0] == 201
    ctype, data = read_watch(port, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1", GO_ACCEPT)
    assert ctype == "application/vnd.kubernetes.protobuf;stream=watch"
    events = kubeproto.decode_watch_stream(data)
    assert [(t, o["kind"], o["metadata"]["name"]) for t, o in events] == [
        ("ADDED", "ConfigMap", "w1"),
        ("ADDED", "ConfigMap", "w2"),
    ]
    ctype, data = read_watch(port, "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1", "*/*")
    assert ctype == "application/json"
    assert [json.loads(line)["object"]["metadata"]["name"] for line in data.splitlines()] == ["w1", "w2"]


def test_discovery_in_protobuf(port: int) -> None:
    """Older client-go discovery asks for protobuf too: the meta.k8s.io kinds carry it."""
    code, ctype, data = call(port, "GET", "/api/v1")
    resources = kubeproto.decode(data)
    assert (code, ctype) == (200, PB) and resources["kind"] == "APIResourceList"
    pods = next(r for r in resources["resources"] if r["name"] == "pods")
    assert pods["namespaced"] is True and "watch" in pods["verbs"] and pods["shortNames"] == ["po"]
    code, ctype, data = call(port, "GET", "/apis")
    groups = {g["name"] for g in kubeproto.decode(data)["groups"]}
    assert (code, ctype) == (200, PB) and {"apps", "batch", "networking.k8s.io"} <= groups
    code, ctype, data = call(port, "GET", "/api")
    assert (code, ctype) == (200, PB) and kubeproto.decode(data)["versions"] == ["v1"]
    code, ctype, data = call(port, "GET", "/version")
    assert (code, ctype) == (200, "application/json") and json.loads(data)["major"] == "1"


def test_scale_subresource_in_protobuf(port: int) -> None:
    body = (FIXTURES / "deployment.bin").read_bytes()
    assert call(port, "POST", "/apis/apps/v1/namespaces/default/deployments", body)[0] == 201
    code, ctype, data = call(port, "GET", "/apis/apps/v1/namespaces/default/deployments/web/scale")
    scale = kubeproto.decode(data)
    assert (code, ctype) == (200, PB)
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1" and scale["spec"]["replicas"] == 2
    scale["spec"]["replicas"] = 0
    code, _, data = call(port, "PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale", kubeproto.encode(scale))
    assert code == 200 and kubeproto.decode(data)["spec"].get("replicas", 0) == 0
    code, _, data = call(port, "GET", "/apis/apps/v1/namespaces/default/deployments/web", accept="application/json")
    assert json.loads(data)["spec"]["replicas"] == 0
