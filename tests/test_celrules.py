"""CEL rules of CRD schemas (x-kubernetes-validations), evaluated as the apiextensions-apiserver
does: self and oldSelf, message, messageExpression, reason, fieldPath, Kubernetes' wording; and
a rule mikro cannot evaluate is not enforced (a warning), never a refusal of a valid object."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mikro.api import celrules, fieldvalidation, resources
from mikro.api.registry import Registry
from mikro.api.store import Store
from mikro.controlplane import bootstrap
from mikro.errors import ApiError

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
                {
                    "rule": "!has(self.name) || self.name.lowerAscii() == self.name",
                    "messageExpression": "'name ' + self.name + ' must be lower case'",
                    "fieldPath": ".name",
                },
            ],
            "properties": {
                "minReplicas": {"type": "integer"},
                "maxReplicas": {"type": "integer"},
                "name": {"type": "string"},
                "mode": {
                    "type": "string",
                    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "mode is immutable"}],
                },
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "integer",
                        "x-kubernetes-validations": [
                            {"rule": "self > 0 && self < 65536", "reason": "FieldValueForbidden"}
                        ],
                    },
                },
            },
        }
    },
}


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def details(found: list[Any]) -> list[str]:
    return [str(e) for e in found]


def test_a_valid_object_passes() -> None:
    assert celrules.errors(SCHEMA, obj(minReplicas=1, maxReplicas=3, name="web", ports=[80]), None) == ([], [])


def test_a_false_rule_refuses_with_its_message() -> None:
    found, _ = celrules.errors(SCHEMA, obj(minReplicas=4, maxReplicas=3), None)
    assert details(found) == ['spec: Invalid value: "object": minReplicas must not exceed maxReplicas']


def test_message_expression_and_field_path() -> None:
    found, _ = celrules.errors(SCHEMA, obj(minReplicas=1, maxReplicas=3, name="Web"), None)
    assert details(found) == ['spec.name: Invalid value: "object": name Web must be lower case']


def test_reason_and_a_rule_without_message_on_list_items() -> None:
    found, _ = celrules.errors(SCHEMA, obj(minReplicas=1, maxReplicas=1, ports=[80, 70000]), None)
    assert details(found) == ["spec.ports[1]: Forbidden: failed rule: self > 0 && self < 65536"]


def test_transition_rules_run_on_update_only() -> None:
    created = obj(minReplicas=1, maxReplicas=1, mode="fast")
    assert celrules.errors(SCHEMA, created, None)[0] == []
    changed = obj(minReplicas=1, maxReplicas=1, mode="slow")
    assert details(celrules.errors(SCHEMA, changed, created)[0]) == [
        'spec.mode: Invalid value: "string": mode is immutable'
    ]
    assert celrules.errors(SCHEMA, created, copy.deepcopy(created))[0] == []


def test_an_absent_field_is_cel_gos_no_such_key() -> None:
    found, _ = celrules.errors(SCHEMA, obj(minReplicas=1), None)
    assert details(found) == [
        'spec: Invalid value: "object": no such key: maxReplicas evaluating rule: self.minReplicas <= self.maxReplicas'
    ]


def test_a_rule_mikro_cannot_evaluate_is_skipped_with_a_reason() -> None:
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "isURL(self.spec.url)"}]}
    found, skipped = celrules.errors(schema, obj(url="https://x"), None)
    assert found == [] and len(skipped) == 1 and "cannot be evaluated by mikro" in skipped[0]
    assert not celrules.compiles("self.a ==") and celrules.compiles("self.a == 1")


# -- through the registry: a CRD with rules, objects refused as Kubernetes refuses them -------

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": SCHEMA}}],
    },
}


@pytest.fixture()
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(reg, "mikro", "mikro", "10.152.0.1")
    reg.create(resources.BY_KIND["CustomResourceDefinition"], "", copy.deepcopy(CRD))
    yield reg
    resources.DYNAMIC.clear()


def test_the_registry_refuses_a_broken_rule_and_an_immutable_change(registry: Registry) -> None:
    widgets = resources.by_group_version_plural("example.com", "v1", "widgets")
    assert widgets is not None
    with pytest.raises(ApiError) as err:
        registry.create(widgets, "default", obj(minReplicas=5, maxReplicas=1))
    assert err.value.code == 422
    assert err.value.message == (
        'Widget.example.com "w" is invalid: spec: Invalid value: "object": minReplicas must not exceed maxReplicas'
    )
    registry.create(widgets, "default", obj(minReplicas=1, maxReplicas=2, mode="fast"))
    with pytest.raises(ApiError) as err:
        registry.patch(widgets, "default", "w", "application/merge-patch+json", {"spec": {"mode": "slow"}})
    assert 'spec.mode: Invalid value: "string": mode is immutable' in err.value.message
    assert registry.patch(widgets, "default", "w", "application/merge-patch+json", {"spec": {"maxReplicas": 3}})


def test_a_crd_with_a_rule_mikro_cannot_compile_is_accepted_with_a_warning(registry: Registry) -> None:
    bad = copy.deepcopy(CRD)
    bad["metadata"]["name"] = "gadgets.example.com"
    bad["spec"]["names"] = {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"}
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.spec.?x.orValue(1) > 0"}],
    }
    token = fieldvalidation.start_request()
    try:
        registry.create(resources.BY_KIND["CustomResourceDefinition"], "", bad)
        warned = fieldvalidation.warnings()
    finally:
        fieldvalidation.end_request(token)
    assert any("mikro cannot compile this CEL rule: not enforced" in w for w in warned), warned


def test_a_rule_past_the_evaluation_budget_is_not_enforced_and_does_not_hold_the_api() -> None:
    # 100 x 100 nested comprehension: minutes on celpy; cel-go would price it past its budget
    schema = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.spec.items.all(x, self.spec.items.all(y, x == y))"}],
    }
    found, skipped = celrules.errors(schema, obj(items=list(range(100))), None)
    assert found == [] and skipped == ["the rules took more than mikro's evaluation budget; the rest are not enforced"]
    # the same rule over a short list is evaluated (and refused: the items differ)
    found, skipped = celrules.errors(schema, obj(items=[1, 2]), None)
    assert skipped == [] and [str(e) for e in found] == [
        '<nil>: Invalid value: "object": failed rule: self.spec.items.all(x, self.spec.items.all(y, x == y))'
    ]
