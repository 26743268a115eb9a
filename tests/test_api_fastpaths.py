"""The create path's shortcuts answer what the longer paths answer."""

from __future__ import annotations

import copy
import json
from typing import Any

from mikro.api import bodies, fieldvalidation, managedfields

TREES: list[Any] = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}},
    {"a": [1, 2.5, None, True, False, {"b": [[], {}]}], "c": ""},
    [],
    "text",
    3,
    None,
]


def test_json_copy_is_a_deep_copy() -> None:
    for tree in TREES:
        copied = bodies.json_copy(tree)
        assert copied == copy.deepcopy(tree)
        assert json.dumps(copied) == json.dumps(tree)  # same key order
    tree = TREES[0]
    copied = bodies.json_copy(tree)
    copied["metadata"]["labels"]["x"] = "2"
    assert tree["metadata"]["labels"]["x"] == "1"


def _slow_duplicates(raw: bytes) -> list[str]:
    """find_duplicates without its shortcut (the walk over every body)."""
    shortcut = fieldvalidation._has_duplicates
    fieldvalidation._has_duplicates = lambda raw: True  # type: ignore[assignment]
    try:
        return fieldvalidation.find_duplicates(raw)
    finally:
        fieldvalidation._has_duplicates = shortcut  # type: ignore[assignment]


def test_duplicate_fields_are_found_with_and_without_the_shortcut() -> None:
    bodies_ = [
        b'{"metadata": {"name": "a", "name": "b"}, "data": {}}',
        b'{"metadata": {"name": "a"}, "metadata": {"name": "b"}}',
        b'{"spec": {"containers": [{"name": "a", "image": "x", "image": "y"}]}}',
        b'{"metadata": {"name": "a"}, "data": {"k": "v", "l": "w"}}',
        b"not json",
        b"[1, 2, {}]",
        b"{}",
    ]
    for raw in bodies_:
        assert fieldvalidation.find_duplicates(raw) == _slow_duplicates(raw), raw
    assert fieldvalidation.find_duplicates(bodies_[2]) == ["spec.containers[0].image"]
    assert fieldvalidation.find_duplicates(bodies_[3]) == []


def test_a_create_records_the_same_managed_fields_as_before() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default", "labels": {"app": "d"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80}]}]},
            },
        },
    }
    fast = copy.deepcopy(obj)
    managedfields.track_update(None, fast, "kubectl", "Deployment")
    slow = copy.deepcopy(obj)
    after = managedfields.kind_fieldset(slow, "Deployment")
    managedfields.record(slow, "kubectl", "Update", "apps/v1", after, after)
    for o in (fast, slow):
        for e in o["metadata"]["managedFields"]:
            e.pop("time")
    assert fast == slow
    assert fast["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]


def test_uids_are_the_uuid_module_s_version_4() -> None:
    import os
    import uuid

    from mikro.api import uids

    for _ in range(2000):
        raw = os.urandom(16)
        uids._pool = raw
        assert uids.uuid4() == str(uuid.UUID(bytes=raw, version=4))
    assert uuid.UUID(uids.uuid4()).version == 4


def test_timestamps_are_the_time_now_to_the_second() -> None:
    from datetime import UTC, datetime

    from mikro.api.store import now_rfc3339

    before = datetime.now(UTC).replace(microsecond=0)
    stamp = datetime.strptime(now_rfc3339(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= stamp <= datetime.now(UTC)
    assert managedfields.now() >= stamp.strftime("%Y-%m-%dT%H:%M:%SZ")  # (the same format: ordered as text)
