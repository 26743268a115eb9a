"""Property-based fuzz of the API server (issue 11): random paths, queries, headers and bodies
against a real server in a thread. Whatever is sent: never a 500, never a traceback in the
log, and the objects created before stay readable, as every list does. No Docker."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mikro.api.resources import RESOURCES, Resource
from tests.test_abuse_api import AUTH, Api, start, stop

KEEP = "keep-fuzz"
# CI runs the same 200 examples every time; MIKRO_FUZZ_EXAMPLES=5000 explores new ones.
EXPLORE = bool(os.environ.get("MIKRO_FUZZ_EXAMPLES"))
EXAMPLES = int(os.environ.get("MIKRO_FUZZ_EXAMPLES") or 200)
PREFIXES = ["/api/v1", "/apis/apps/v1", "/apis/networking.k8s.io/v1", "/apis/batch/v1", "/apis/nope/v1", "/api/v2"]
PLURALS = sorted({r.plural for r in RESOURCES}) + ["nope"]
NAMES = ["web", "cfg", "default", "kube-system", "a.b", "UPPER", "x" * 300, "-bad-", "p"]
SUBS = ["status", "scale", "log", "exec", "nope"]
QUERY_KEYS = [
    "resourceVersion",
    "timeoutSeconds",
    "limit",
    "continue",
    "labelSelector",
    "fieldSelector",
    "gracePeriodSeconds",
    "propagationPolicy",
    "dryRun",
    "tailLines",
    "container",
    "follow",
    "previous",
    "fieldManager",
    "command",
]
CONTENT_TYPES = [
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
    "text/plain",
]

segment = st.one_of(
    st.text(min_size=1, max_size=20).map(lambda s: quote(s, safe="")),
    st.sampled_from(["%", "%zz", "%ff", "%0a", "..", "%2F", "web%0A"]),
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
manifest = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"name": st.sampled_from(NAMES) | st.text(max_size=20)},
            optional={
                "labels": st.dictionaries(st.text(max_size=10), json_value, max_size=3),
                "namespace": st.sampled_from(["default", "nope", ""]),
                "resourceVersion": st.sampled_from(["1", "abc", "999999"]),
                "ownerReferences": json_value,
                "finalizers": json_value,
            },
        )
    },
    optional={
        "apiVersion": st.sampled_from(["v1", "apps/v1", "x"]),
        "kind": st.sampled_from(["ConfigMap", "Deployment", "Pod", "Service", "Secret", "Nope"]),
        "spec": json_value,
        "data": json_value,
        "status": json_value,
        "stringData": json_value,
    },
)
patch_ops = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "remove", "replace", "test", "move", "x"]), "path": st.text(max_size=20)},
        optional={"value": json_value},
    ),
    max_size=4,
)


QUERY_VALUES = ["abc", "-1", "0", "1", "5", "", "true", "x=y", "1.5", "--1", "99999999999999999999", "Orphan", "All"]


def collection(res: Resource, ns: str) -> str:
    prefix = "/api/v1" if not res.group else f"/apis/{res.group}/{res.version}"
    return f"{prefix}/namespaces/{ns}/{res.plural}" if res.namespaced else f"{prefix}/{res.plural}"


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes | None]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
    if draw(st.integers(0, 4)):
        # Mostly the paths of real resources, where the verbs run.
        res = draw(st.sampled_from(RESOURCES))
        path = collection(res, draw(st.sampled_from(["default", "default", "nope"]) | segment))
        if draw(st.booleans()):
            path += "/" + draw(st.sampled_from(NAMES) | segment)
            if draw(st.integers(0, 3)) == 0:
                path += "/" + draw(st.sampled_from(SUBS) | segment)
    else:
        path = draw(st.sampled_from([*PREFIXES, "/api", "/apis", "/version", "/healthz", "/openapi/v2", "", "/x"]))
        if draw(st.booleans()):
            path += "/namespaces/" + draw(st.sampled_from(["default", "nope", "kube-system"]) | segment)
        if draw(st.integers(0, 4)):
            path += "/" + draw(st.sampled_from(PLURALS) | segment)
            if draw(st.booleans()):
                path += "/" + draw(st.sampled_from(NAMES) | segment)
    values = st.sampled_from(QUERY_VALUES) | st.text(max_size=12)
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS), values, max_size=4))
    if draw(st.integers(0, 4)) == 0:
        query["watch"] = draw(st.sampled_from(["true", "1", "false", "x"]))
        if draw(st.booleans()):
            query["timeoutSeconds"] = "1"  # a watch that ends, so that the next example runs
    if query.get("watch") in ("true", "1") and bodies_ok_timeout(query.get("timeoutSeconds")):
        query["timeoutSeconds"] = "1"
    if query.get("follow") == "true":
        query["follow"] = "false"
    headers = {**AUTH, "Content-Type": draw(st.sampled_from(CONTENT_TYPES))}
    if draw(st.integers(0, 5)) == 0:
        headers["Accept"] = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    body: bytes | None = draw(
        st.one_of(
            st.none(),
            manifest.map(lambda m: json.dumps(m).encode()),
            manifest.map(lambda m: json.dumps(m).encode()),
            json_value.map(lambda v: json.dumps(v).encode()),
            patch_ops.map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=64),
            st.sampled_from([b"a: &a [*a]", b"{", b"[" * 5000, b"- - - x", b'{"a": NaN}', b"\xff\xfe"]),
        )
    )
    return method, path + ("?" + urlencode(query) if query else ""), headers, body


def bodies_ok_timeout(value: str | None) -> bool:
    """Whether a watch with this timeoutSeconds would be accepted and then run long: such
    watches get 1 s, so that the fuzz moves on (bad values stay, to be refused)."""
    if value is None:
        return True
    try:
        return int(value) != 1 and int(value) >= 0
    except ValueError:
        return False


class Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(record)


@pytest.fixture()
def logged() -> Iterator[Tracebacks]:
    handler = Tracebacks()
    logger = logging.getLogger("mikro")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def send(api: Api, method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[int, Any]:
    conn = api.connect()
    try:
        conn.request(method, path or "/", body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, raw
    finally:
        conn.close()


def test_random_requests_never_break_the_api(tmp_path: Path, logged: Tracebacks) -> None:
    api = start(tmp_path, tls=False)
    precious = {
        f"/api/v1/namespaces/{KEEP}/configmaps/precious": {"metadata": {"name": "precious"}, "data": {"a": "1"}},
        f"/apis/apps/v1/namespaces/{KEEP}/deployments/web": {
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}]},
                },
            },
        },
    }
    try:
        assert api.call("POST", "/api/v1/namespaces", {"metadata": {"name": KEEP}})[0] == 201
        for path, obj in precious.items():
            assert api.call("POST", path.rsplit("/", 1)[0], obj)[0] == 201
        before = {path: api.call("GET", path)[1] for path in precious}

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=not EXPLORE,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(requests())
        def one(request: tuple[str, str, dict[str, str], bytes | None]) -> None:
            method, path, headers, body = request
            code, raw = send(api, method, path, headers, body)
            assert code < 500 or code == 503, (method, path, body, code, raw[:300])
            assert [r.getMessage() for r in logged.records] == []

        one()
        for path, obj in before.items():
            assert api.call("GET", path) == (200, obj)
        for res in RESOURCES:
            prefix = "/api/v1" if not res.group else f"/apis/{res.group}/{res.version}"
            code, listed = api.call("GET", f"{prefix}/{res.plural}")
            assert code == 200 and isinstance(listed["items"], list), res.plural
            code, _ = api.call(
                "GET", f"{prefix}/{res.plural}", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
            )
            assert code == 200, res.plural
        assert logged.records == []
    finally:
        stop(api)
