"""Admission webhooks (no Docker): which writes a webhook's rules and selectors concern, the
AdmissionReview sent, Kubernetes' wording for a refusal and a failed call, and the whole path
through the registry against a real HTTPS webhook on 127.0.0.1 (CA bundle checked, JSONPatch
applied, failurePolicy honoured, warnings passed on)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mikro.api import fieldvalidation, webhooks
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.controlplane import bootstrap
from mikro.errors import ApiError
from tests.certs import self_signed
from tests.webhook_kit import json_patch, webhook_server

CM, POD, NS = BY_KIND["ConfigMap"], BY_KIND["Pod"], BY_KIND["Namespace"]
VWC, MWC = BY_KIND["ValidatingWebhookConfiguration"], BY_KIND["MutatingWebhookConfiguration"]
RULE = {"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}


def call(res: Any = CM, op: str = "CREATE", obj: Any = None, sub: str = "") -> webhooks.Call:
    obj = obj if obj is not None else {"metadata": {"name": "x", "labels": {"app": "web"}}}
    return webhooks.Call(res, op, "default", "x", obj, None, False, sub)


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        (RULE, True),
        ({**RULE, "operations": ["*"]}, True),
        ({**RULE, "operations": ["DELETE"]}, False),
        ({**RULE, "apiGroups": ["apps"]}, False),
        ({**RULE, "resources": ["*"]}, True),
        ({**RULE, "resources": ["pods"]}, False),
        ({**RULE, "resources": ["configmaps/*"]}, False),  # subresources only
        ({**RULE, "scope": "Cluster"}, False),
        ({**RULE, "scope": "Namespaced"}, True),
    ],
)
def test_rules(rule: dict[str, Any], matches: bool) -> None:
    assert webhooks.rule_matches(rule, call()) is matches


def test_subresource_rules() -> None:
    status = call(POD, "UPDATE", sub="status")
    assert webhooks.rule_matches({**RULE, "resources": ["pods/status"], "operations": ["*"]}, status)
    assert webhooks.rule_matches({**RULE, "resources": ["*/*"], "operations": ["*"]}, status)
    assert not webhooks.rule_matches({**RULE, "resources": ["pods"], "operations": ["*"]}, status)


def test_selectors() -> None:
    hook = {"rules": [RULE], "namespaceSelector": {"matchLabels": {"hooks": "on"}}}
    assert webhooks.webhook_matches(hook, call(), {"hooks": "on"})
    assert not webhooks.webhook_matches(hook, call(), {})
    hook = {
        "rules": [RULE],
        "objectSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
    }
    assert webhooks.webhook_matches(hook, call(), {})
    assert not webhooks.webhook_matches(hook, call(obj={"metadata": {"name": "x"}}), {})


def test_the_review_sent() -> None:
    webhooks.USER.set({"username": "jane", "groups": ["devs"]})
    try:
        sent = webhooks.review(call(), {})
    finally:
        webhooks.USER.set(None)
    request = sent["request"]
    assert (sent["apiVersion"], sent["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert (request["operation"], request["namespace"], request["name"]) == ("CREATE", "default", "x")
    assert request["userInfo"] == {"username": "jane", "groups": ["devs"]}
    assert request["options"] == {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
    assert request["oldObject"] is None and request["dryRun"] is False and request["uid"]


def test_refusals_in_kubernetes_words() -> None:
    err = webhooks.denied(call(), "deny.example.com", {"message": "not today"})
    assert (err.code, err.reason) == (403, "Forbidden")
    assert (
        err.message == 'configmaps "x" is forbidden: admission webhook "deny.example.com" denied the request: not today'
    )
    err = webhooks.denied(call(BY_KIND["Deployment"]), "deny.example.com", {"code": 422, "reason": "Invalid"})
    assert err.code == 422
    assert (
        err.message
        == 'deployments.apps "x" is forbidden: admission webhook "deny.example.com" denied the request: Invalid'
    )
    assert webhooks.denied(call(), "h.example.com", None).message.endswith("denied the request without explanation")


def test_responses_are_checked() -> None:
    sent = webhooks.review(call(), {})
    with pytest.raises(ValueError, match="uid"):
        webhooks.answer(
            sent, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "other"}}, "h"
        )
    with pytest.raises(ValueError, match="AdmissionReview"):
        webhooks.answer(sent, {"kind": "Status"}, "h")
    patched = webhooks.apply_patch(
        {"metadata": {"name": "x"}}, json_patch([{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}])
    )
    assert patched == {"metadata": {"name": "x", "labels": {"a": "b"}}}


def test_configurations_are_validated_and_defaulted() -> None:
    problems = webhooks.validate_config({"webhooks": [{"name": "short", "clientConfig": {}, "timeoutSeconds": 31}]})
    assert [p[0] for p in problems] == [
        "webhooks[0].name",
        "webhooks[0].sideEffects",
        "webhooks[0].admissionReviewVersions",
        "webhooks[0].timeoutSeconds",
        "webhooks[0].clientConfig",
    ]
    config = {"kind": "MutatingWebhookConfiguration", "webhooks": [{"rules": [{}], "clientConfig": {"service": {}}}]}
    webhooks.default_config(config)
    hook = config["webhooks"][0]
    assert (hook["failurePolicy"], hook["timeoutSeconds"], hook["reinvocationPolicy"], hook["rules"][0]["scope"]) == (
        "Fail",
        10,
        "Never",
        "*",
    )
    assert hook["clientConfig"]["service"]["port"] == 443


# -- through the registry, against a real HTTPS webhook -------------------------------------


@pytest.fixture()
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(reg, "mikro", "mikro", "10.152.0.1")
    yield reg


def configuration(kind: str, port: int, ca: bytes, **hook: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{kind.lower()}-test"},
        "webhooks": [
            {
                "name": "check.example.com",
                "clientConfig": {"url": f"https://127.0.0.1:{port}/check", "caBundle": base64.b64encode(ca).decode()},
                "rules": [RULE],
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                **hook,
            }
        ],
    }


def test_a_validating_webhook_refuses_and_allows(registry: Registry) -> None:
    cert, key = self_signed("hook.default.svc")

    def decide(request: dict[str, Any]) -> dict[str, Any]:
        if request["name"] == "bad":
            return {"allowed": False, "status": {"message": "no configmaps named bad"}}
        return {"allowed": True, "warnings": ["looked at it"]}

    with webhook_server(cert, key, decide) as (port, received):
        registry.create(VWC, "", configuration("Validating", port, cert))
        with pytest.raises(ApiError) as err:
            registry.create(CM, "default", {"metadata": {"name": "bad"}})
        assert err.value.code == 403
        assert (
            err.value.message
            == 'configmaps "bad" is forbidden: admission webhook "check.example.com" denied the request: no configmaps named bad'
        )
        assert registry.store.find(CM, "default", "bad") is None
        token = fieldvalidation.start_request()
        try:
            registry.create(CM, "default", {"metadata": {"name": "good"}})
            assert fieldvalidation.warnings() == ["looked at it"]
        finally:
            fieldvalidation.end_request(token)
        registry.patch(CM, "default", "good", "application/merge-patch+json", {"data": {"a": "1"}})
        assert [(r["operation"], r["name"]) for r in received] == [
            ("CREATE", "bad"),
            ("CREATE", "good"),
            ("UPDATE", "good"),
        ]
        assert received[2]["oldObject"]["metadata"]["name"] == "good" and received[2]["object"]["data"] == {"a": "1"}
        registry.create(
            POD, "default", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
        )
        assert len(received) == 3  # pods are not in its rules


def test_a_mutating_webhook_patches_before_validation(registry: Registry) -> None:
    cert, key = self_signed("hook.default.svc")

    def decide(request: dict[str, Any]) -> dict[str, Any]:
        return json_patch([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])

    with webhook_server(cert, key, decide) as (port, _):
        registry.create(MWC, "", configuration("Mutating", port, cert))
        created = registry.create(CM, "default", {"metadata": {"name": "m"}})
        assert created["metadata"]["labels"] == {"mutated": "yes"}


def test_an_unreachable_webhook_fails_or_is_ignored_by_its_policy(registry: Registry) -> None:
    cert, key = self_signed("hook.default.svc")
    with webhook_server(cert, key, lambda r: {"allowed": True}) as (port, _):
        pass  # closed again: nothing listens on the port now
    registry.create(VWC, "", configuration("Validating", port, cert))
    with pytest.raises(ApiError) as err:
        registry.create(CM, "default", {"metadata": {"name": "a"}})
    assert err.value.code == 500
    assert err.value.message.startswith(
        'Internal error occurred: failed calling webhook "check.example.com": failed to call webhook:'
    )
    ignoring = configuration("Validating", port, cert, failurePolicy="Ignore")
    ignoring["metadata"]["name"] = "validating-test"
    current = registry.get(VWC, "", "validating-test")
    registry.update(VWC, "", "validating-test", {**ignoring, "metadata": current["metadata"]})
    assert registry.create(CM, "default", {"metadata": {"name": "a"}})["metadata"]["name"] == "a"


def test_a_certificate_the_ca_bundle_does_not_sign_is_refused(registry: Registry) -> None:
    cert, key = self_signed("hook.default.svc")
    other, _ = self_signed("other.default.svc")
    with webhook_server(cert, key, lambda r: {"allowed": True}) as (port, received):
        registry.create(VWC, "", configuration("Validating", port, other))
        with pytest.raises(ApiError) as err:
            registry.create(CM, "default", {"metadata": {"name": "a"}})
        assert err.value.code == 500 and "CERTIFICATE_VERIFY_FAILED" in err.value.message
        assert received == []


def test_service_references_connect_to_the_cluster_ip_and_check_the_service_name(registry: Registry) -> None:
    cert, key = self_signed("hook.default.svc")
    with webhook_server(cert, key, lambda r: {"allowed": False}) as (port, received):
        hook = {
            "name": "svc.example.com",
            "clientConfig": {
                "service": {"name": "hook", "namespace": "default", "port": port},
                "caBundle": base64.b64encode(cert).decode(),
            },
            "rules": [RULE],
        }
        sent = webhooks.Call(CM, "CREATE", "default", "x", {"metadata": {"name": "x"}}, None, False)
        with pytest.raises(ApiError) as err:
            webhooks.admit(
                sent, [copy.deepcopy(hook)], False, lambda ns, name: {"spec": {"clusterIP": "127.0.0.1"}}, {}, print
            )
        assert err.value.code == 403 and received[0]["name"] == "x"


def test_match_conditions_decide_whether_the_webhook_is_called(registry: Registry) -> None:
    cert, key = self_signed("hook.default.svc")
    with webhook_server(cert, key, lambda r: {"allowed": False, "status": {"message": "no"}}) as (port, received):
        conditions = [
            {"name": "not-skipped", "expression": "object.metadata.name != 'skip'"},
            {"name": "is-create", "expression": "request.operation == 'CREATE'"},
        ]
        registry.create(VWC, "", configuration("Validating", port, cert, matchConditions=conditions))
        assert registry.create(CM, "default", {"metadata": {"name": "skip"}})["metadata"]["name"] == "skip"
        assert received == []
        with pytest.raises(ApiError) as err:
            registry.create(CM, "default", {"metadata": {"name": "checked"}})
        assert err.value.code == 403 and [r["name"] for r in received] == ["checked"]


def test_a_condition_mikro_cannot_evaluate_calls_the_webhook() -> None:
    from mikro.api import celrules

    assert celrules.condition_holds("object.a == 1", {"object": {"a": 1}}) is True
    assert celrules.condition_holds("object.a == 1", {"object": {"a": 2}}) is False
    assert celrules.condition_holds("object.?a.orValue(1) == 1", {"object": {}}) is None  # optionals
    with pytest.raises(ValueError, match="no such key: a"):
        celrules.condition_holds("object.a == 1", {"object": {}})
