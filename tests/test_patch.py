"""PATCH bodies as kubectl sends them."""

from __future__ import annotations

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
