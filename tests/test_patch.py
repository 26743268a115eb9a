"""PATCH bodies as kubectl sends them."""

from __future__ import annotations

import pytest

from mikro.api.patch import json_patch, merge_patch, strategic_merge_patch

POD_SPEC = {
    "containers": [{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]}, {"name": "b", "image": "b:1"}],
    "volumes": [{"name": "v", "emptyDir": {}}],
}


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    result = merge_patch({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}, {"b": {"c": None}, "l": [3]})
    assert result == {"a": 1, "b": {"d": 3}, "l": [3]}


def test_strategic_merge_by_name() -> None:
    patch = {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}
    result = strategic_merge_patch(POD_SPEC, patch)
    assert [(c["name"], c["image"]) for c in result["containers"]] == [("a", "a:1"), ("b", "b:2"), ("c", "c:1")]
    assert result["containers"][0]["env"] == [{"name": "X", "value": "1"}]


def test_strategic_merge_env_and_delete_directive() -> None:
    patch = {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "$patch": "delete"}]}]}
    result = strategic_merge_patch(POD_SPEC, patch)
    assert result["containers"][0]["env"] == [{"name": "Y", "value": "2"}]


def test_strategic_merge_ports_by_container_port_and_order() -> None:
    target = {"ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}
    patch = {
        "$setElementOrder/ports": [{"containerPort": 443}, {"containerPort": 80}],
        "ports": [{"containerPort": 80, "name": "web"}],
    }
    result = strategic_merge_patch(target, patch)
    assert result["ports"] == [{"containerPort": 443}, {"containerPort": 80, "name": "web"}]


def test_json_patch() -> None:
    doc = {"spec": {"replicas": 1, "list": [1, 2]}}
    result = json_patch(
        doc,
        [
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "remove", "path": "/spec/list/0"},
        ],
    )
    assert result == {"spec": {"replicas": 3, "list": [2, 3]}}


def test_strategic_directives_kubectl_sends() -> None:
    deploy_spec = {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "replicas": 2}
    # kubectl apply switching the strategy to Recreate: retainKeys clears rollingUpdate.
    patched = strategic_merge_patch(deploy_spec, {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}})
    assert patched["strategy"] == {"type": "Recreate"} and patched["replicas"] == 2
    # $patch: replace on a map replaces it whole; $patch: delete removes it.
    replaced = strategic_merge_patch({"selector": {"a": "1", "b": "2"}}, {"selector": {"$patch": "replace", "c": "3"}})
    assert replaced == {"selector": {"c": "3"}}
    assert strategic_merge_patch({"x": {"a": 1}, "y": 1}, {"x": {"$patch": "delete"}}) == {"y": 1}
    # $patch: replace inside a merged list replaces the list.
    containers = strategic_merge_patch(POD_SPEC, {"containers": [{"$patch": "replace"}, {"name": "z", "image": "z:1"}]})
    assert containers["containers"] == [{"name": "z", "image": "z:1"}]
    # finalizers merge as a set; $deleteFromPrimitiveList removes from it.
    meta = {"finalizers": ["a", "b"]}
    assert strategic_merge_patch(meta, {"finalizers": ["c", "a"]})["finalizers"] == ["a", "b", "c"]
    assert strategic_merge_patch(meta, {"$deleteFromPrimitiveList/finalizers": ["a"]})["finalizers"] == ["b"]


def test_json_patch_test_move_copy_and_failures() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"list": [1, 2]}}
    moved = json_patch(
        doc,
        [
            {"op": "test", "path": "/metadata/labels/a", "value": "1"},
            {"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/b"},
            {"op": "copy", "from": "/spec/list/0", "path": "/spec/list/-"},
        ],
    )
    assert moved == {"metadata": {"labels": {"b": "1"}}, "spec": {"list": [1, 2, 1]}}
    for bad in (
        [{"op": "test", "path": "/metadata/labels/a", "value": "2"}],
        [{"op": "remove", "path": "/nope/x"}],
        [{"op": "replace", "path": "/metadata/missing", "value": 1}],
        [{"op": "add", "path": "/spec/list/9", "value": 1}],
        [{"op": "frobnicate", "path": "/spec"}],
    ):
        with pytest.raises(ValueError):
            json_patch(doc, bad)
    assert doc["metadata"]["labels"] == {"a": "1"}  # a failed patch changes nothing
