"""Dynamic admission: MutatingWebhookConfiguration and ValidatingWebhookConfiguration, called as
kube-apiserver calls them. For a write that a webhook's rules, namespaceSelector and
objectSelector match, an `admission.k8s.io/v1` AdmissionReview goes by HTTPS POST to the
webhook (a Service's `<name>.<namespace>.svc` at its ClusterIP, or a URL), checked against its
`caBundle`; a mutating webhook's JSONPatch is applied, a refusal is Kubernetes' 403 `admission
webhook "<name>" denied the request: ...`, and a webhook that cannot be reached fails the write
or not as its `failurePolicy` says. Mutating webhooks run before the object is validated,
validating ones after (charts' webhooks: cert-manager, ingress-nginx's admission, policy
engines)."""

from __future__ import annotations

import base64
import contextvars
import http.client
import json
import logging
import socket
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mikro.api import patch as patches
from mikro.api.resources import Resource
from mikro.errors import ApiError

Obj = dict[str, Any]
log = logging.getLogger("mikro.webhooks")
MUTATING, VALIDATING = "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"
KINDS = (MUTATING, VALIDATING)
OPTIONS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}
# Who the request came from (set by the API server per request): the AdmissionReview's userInfo.
USER: contextvars.ContextVar[Obj | None] = contextvars.ContextVar("mikro_webhook_user", default=None)
CONTROLLERS = {"username": "system:kube-controller-manager", "groups": ["system:authenticated"]}


@dataclass(frozen=True)
class Call:
    """One write as admission sees it."""

    res: Resource
    operation: str  # CREATE, UPDATE or DELETE
    namespace: str
    name: str
    obj: Obj | None
    old: Obj | None
    dry_run: bool
    subresource: str = ""


def _selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    from mikro.api.validation import selector_matches  # validation imports this module

    return selector_matches(selector, labels)


# -- the configurations (pure) ----------------------------------------------------------------

OPERATIONS = ("*", "CREATE", "UPDATE", "DELETE", "CONNECT")


def default_config(obj: Obj) -> None:
    """The defaults kube-apiserver gives each webhook of a configuration."""
    mutating = obj.get("kind") == MUTATING
    for hook in obj.get("webhooks") or []:
        if not isinstance(hook, dict):
            continue
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", 10)
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        for rule in hook.get("rules") or []:
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")
        service = (hook.get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            service.setdefault("port", 443)


def validate_config(obj: Obj) -> list[tuple[str, str, str]]:
    """Field problems of a webhook configuration, in kube-apiserver's words."""
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for i, hook in enumerate(obj.get("webhooks") or []):
        at = f"webhooks[{i}]"
        if not isinstance(hook, dict):
            out.append((at, "Invalid", "Invalid value: must be an object"))
            continue
        name = hook.get("name")
        if not isinstance(name, str) or not name:
            out.append((f"{at}.name", "Required", "Required value"))
        elif name in seen:
            out.append((f"{at}.name", "Duplicate", f'Duplicate value: "{name}"'))
        elif len(name.split(".")) < 3:
            out.append(
                (
                    f"{at}.name",
                    "Invalid",
                    f'Invalid value: "{name}": should be a domain with at least three segments separated by dots',
                )
            )
        seen.add(str(name))
        if hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
            if hook.get("sideEffects") is None:
                out.append((f"{at}.sideEffects", "Required", "Required value: must specify one of None, NoneOnDryRun"))
            else:
                out.append(
                    (
                        f"{at}.sideEffects",
                        "Unsupported",
                        f'Unsupported value: "{hook.get("sideEffects")}": supported values: "None", "NoneOnDryRun"',
                    )
                )
        versions = hook.get("admissionReviewVersions")
        if not versions:
            out.append((f"{at}.admissionReviewVersions", "Required", "Required value: must specify one of v1, v1beta1"))
        elif not isinstance(versions, list) or not {"v1", "v1beta1"} & set(map(str, versions)):
            out.append(
                (
                    f"{at}.admissionReviewVersions",
                    "Invalid",
                    f"Invalid value: {versions}: must include at least one of v1, v1beta1",
                )
            )
        if hook.get("failurePolicy") not in (None, "Ignore", "Fail"):
            out.append(
                (
                    f"{at}.failurePolicy",
                    "Unsupported",
                    f'Unsupported value: "{hook.get("failurePolicy")}": supported values: "Fail", "Ignore"',
                )
            )
        timeout = hook.get("timeoutSeconds")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 30
        ):
            out.append(
                (
                    f"{at}.timeoutSeconds",
                    "Invalid",
                    f"Invalid value: {timeout}: the timeout value must be between 1 and 30 seconds",
                )
            )
        config = hook.get("clientConfig") or {}
        if not isinstance(config, dict) or bool(config.get("url")) == bool(config.get("service")):
            out.append((f"{at}.clientConfig", "Required", "Required value: exactly one of url or service is required"))
        elif config.get("url"):
            url = urlsplit(str(config["url"]))
            if url.scheme != "https":
                out.append(
                    (
                        f"{at}.clientConfig.url",
                        "Invalid",
                        f"Invalid value: \"{config['url']}\": 'https' is the only allowed URL scheme",
                    )
                )
        else:
            service = config["service"]
            for field in ("name", "namespace"):
                if not isinstance(service, dict) or not service.get(field):
                    out.append(
                        (
                            f"{at}.clientConfig.service.{field}",
                            "Required",
                            "Required value: service " + field + " is required",
                        )
                    )
        for j, rule in enumerate(hook.get("rules") or []):
            for k, op in enumerate((rule or {}).get("operations") or []):
                if op not in OPERATIONS:
                    out.append(
                        (
                            f"{at}.rules[{j}].operations[{k}]",
                            "Unsupported",
                            f'Unsupported value: "{op}": supported values: "*", "CONNECT", "CREATE", "DELETE", "UPDATE"',
                        )
                    )
    return out


# -- which webhooks a write concerns (pure) -------------------------------------------------


def _matches(values: list[str] | None, value: str) -> bool:
    return bool(values) and ("*" in values or value in values)


def rule_matches(rule: Obj, call: Call) -> bool:
    """One of a webhook's rules against a write: operations, apiGroups, apiVersions, resources
    (`*`, `pods`, `pods/*`, `*/status`) and scope, as the apiserver's rule matcher reads them."""
    if not _matches(rule.get("operations"), call.operation):
        return False
    if not _matches(rule.get("apiGroups"), call.res.group) or not _matches(rule.get("apiVersions"), call.res.version):
        return False
    wanted = f"{call.res.plural}/{call.subresource}" if call.subresource else call.res.plural
    found = False
    for item in rule.get("resources") or []:
        plural, _, sub = str(item).partition("/")
        if item == "*/*":  # every resource and every subresource
            found = True
        elif sub:  # `pods/*`: the subresources of pods, not pods itself
            found = plural in ("*", call.res.plural) and bool(call.subresource) and sub in ("*", call.subresource)
        else:
            found = not call.subresource and plural in ("*", call.res.plural)
        if found or item == wanted:
            break
    if not found:
        return False
    scope = rule.get("scope") or "*"
    return scope == "*" or (scope == "Namespaced") == call.res.namespaced


def webhook_matches(hook: Obj, call: Call, namespace_labels: dict[str, str] | None) -> bool:
    if not any(rule_matches(r, call) for r in hook.get("rules") or []):
        return False
    ns_selector = hook.get("namespaceSelector") or {}
    if ns_selector:
        if call.res.kind == "Namespace":
            labels = ((call.obj or call.old or {}).get("metadata") or {}).get("labels") or {}
            if not _selector_matches(ns_selector, labels):
                return False
        elif call.res.namespaced and not _selector_matches(ns_selector, namespace_labels or {}):
            return False
    obj_selector = hook.get("objectSelector") or {}
    if obj_selector:
        candidates = [((o or {}).get("metadata") or {}).get("labels") or {} for o in (call.obj, call.old) if o]
        if not any(_selector_matches(obj_selector, labels) for labels in candidates):
            return False
    return True


def review(call: Call, hook: Obj) -> Obj:
    """The AdmissionReview sent to a webhook."""
    res = call.res
    kind = {"group": res.group, "version": res.version, "kind": res.kind}
    resource = {"group": res.group, "version": res.version, "resource": res.plural}
    request: Obj = {
        "uid": str(uuid.uuid4()),
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": call.name,
        "operation": call.operation,
        "userInfo": USER.get() or CONTROLLERS,
        "object": call.obj,
        "oldObject": call.old,
        "dryRun": call.dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": OPTIONS[call.operation]},
    }
    if call.subresource:
        request["subResource"] = call.subresource
        request["requestSubResource"] = call.subresource
    if res.namespaced:
        request["namespace"] = call.namespace
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def denied(call: Call, hook_name: str, status: Obj | None) -> ApiError:
    """kube-apiserver's ToStatusErr: 403 unless the webhook gave a code, its message prefixed."""
    status = dict(status or {})
    code = int(status.get("code") or 403)
    by = f'admission webhook "{hook_name}" denied the request'
    if status.get("message"):
        text = f"{by}: {status['message']}"
    elif status.get("reason"):
        text = f"{by}: {status['reason']}"
    else:
        text = f"{by} without explanation"
    group_resource = f"{call.res.plural}.{call.res.group}" if call.res.group else call.res.plural
    prefix = "Internal error occurred" if code == 500 else f'{group_resource} "{call.name or "Unknown"}" is forbidden'
    reason = status.get("reason") or ("InternalError" if code == 500 else "Forbidden")
    details = status.get("details") or {
        "group": call.res.group,
        "kind": call.res.plural,
        "name": call.name or "Unknown",
    }
    return ApiError(code, f"{prefix}: {text}", reason, details)


def answer(sent: Obj, received: Any, hook_name: str) -> Obj:
    """The checked response of an AdmissionReview (ValueError for a malformed one)."""
    if not isinstance(received, dict) or received.get("kind") != "AdmissionReview":
        raise ValueError("expected response of kind AdmissionReview")
    if received.get("apiVersion") not in ("admission.k8s.io/v1", "admission.k8s.io/v1beta1"):
        raise ValueError(f"expected webhook response of admission.k8s.io/v1, got {received.get('apiVersion')}")
    response = received.get("response")
    if not isinstance(response, dict):
        raise ValueError("webhook response was absent")
    if response.get("uid") != sent["request"]["uid"]:
        raise ValueError(f"expected response.uid={sent['request']['uid']!r}, got {response.get('uid')!r}")
    return response


def apply_patch(obj: Obj, response: Obj) -> Obj:
    """A mutating webhook's JSONPatch applied to the object."""
    if not response.get("patch"):
        return obj
    if response.get("patchType", "JSONPatch") != "JSONPatch":
        raise ValueError(f"unsupported patch type {response.get('patchType')!r}")
    operations = json.loads(base64.b64decode(response["patch"]))
    if not isinstance(operations, list):
        raise ValueError("the patch is not a JSON patch (a list of operations)")
    patched = patches.json_patch(obj, operations)
    if not isinstance(patched, dict):
        raise ValueError("the patch did not leave an object")
    return patched


# -- the call (side effects: the network) ---------------------------------------------------

Endpoint = tuple[str, int, str, str]  # (address to connect to, port, TLS server name, path)
Post = Callable[[Endpoint, bytes, bytes | None, float], Any]


def endpoint(hook: Obj, find_service: Callable[[str, str], Obj | None]) -> Endpoint:
    config = hook.get("clientConfig") or {}
    timeout = int(hook.get("timeoutSeconds") or 10)
    if config.get("url"):
        url = urlsplit(str(config["url"]))
        if url.scheme != "https" or not url.hostname:
            raise ValueError(f"webhook URL {config['url']!r} must be https://host[:port]/path")
        return url.hostname, url.port or 443, url.hostname, (url.path or "/") + f"?timeout={timeout}s"
    service = config.get("service") or {}
    name, namespace = str(service.get("name", "")), str(service.get("namespace", ""))
    svc = find_service(namespace, name)
    address = ((svc or {}).get("spec") or {}).get("clusterIP")
    if not address or address == "None":
        raise ValueError(f'service "{namespace}/{name}" not found or without a ClusterIP')
    path = service.get("path") or "/"
    return address, int(service.get("port") or 443), f"{name}.{namespace}.svc", f"{path}?timeout={timeout}s"


def post(where: Endpoint, body: bytes, ca_bundle: bytes | None, timeout: float) -> Any:
    """HTTPS POST of a review, the server's certificate checked against the webhook's CA bundle
    (or the system's) for the service's DNS name, connecting to its address."""
    address, port, server_name, path = where
    context = ssl.create_default_context(cadata=ca_bundle.decode() if ca_bundle else None)
    raw = socket.create_connection((address, port), timeout=timeout)
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.sock = context.wrap_socket(raw, server_hostname=server_name)
        conn.request(
            "POST", path, body=body, headers={"Content-Type": "application/json", "Accept": "application/json"}
        )
        resp = conn.getresponse()
        data = resp.read(4 << 20)
        if resp.status != 200:
            raise ValueError(f"the server responded with status {resp.status}: {data[:200].decode(errors='replace')}")
        return json.loads(data)
    finally:
        conn.close()
        raw.close()


def admit(
    call: Call,
    hooks: list[Obj],
    mutating: bool,
    find_service: Callable[[str, str], Obj | None],
    namespace_labels: dict[str, str] | None,
    warn: Callable[[str], None],
    send: Post = post,
) -> Obj | None:
    """Run the matching webhooks of one kind over a write; the (possibly patched) object."""
    obj = call.obj
    for hook in hooks:
        current = Call(
            call.res, call.operation, call.namespace, call.name, obj, call.old, call.dry_run, call.subresource
        )
        if not webhook_matches(hook, current, namespace_labels):
            continue
        name = str(hook.get("name", ""))
        sent = review(current, hook)
        try:
            if not conditions_hold(hook, current, sent["request"]):
                continue
            where = endpoint(hook, find_service)
            ca = base64.b64decode((hook.get("clientConfig") or {}).get("caBundle") or "") or None
            timeout = float(hook.get("timeoutSeconds") or 10)
            response = answer(sent, send(where, json.dumps(sent).encode(), ca, timeout), name)
        except (OSError, ValueError, ssl.SSLError, http.client.HTTPException, json.JSONDecodeError) as exc:
            if (hook.get("failurePolicy") or "Fail") == "Ignore":
                log.warning("webhook %s failed, ignored (failurePolicy Ignore): %s", name, exc)
                continue
            message = f'failed calling webhook "{name}": failed to call webhook: {exc}'
            raise ApiError(
                500, f"Internal error occurred: {message}", "InternalError", {"causes": [{"message": message}]}
            ) from None
        for text in response.get("warnings") or []:
            warn(str(text))
        if not response.get("allowed"):
            raise denied(current, name, response.get("status"))
        if mutating and obj is not None:
            try:
                obj = apply_patch(obj, response)
            except (ValueError, TypeError, KeyError, IndexError, json.JSONDecodeError) as exc:
                message = f'failed calling webhook "{name}": {exc}'
                raise ApiError(500, f"Internal error occurred: {message}", "InternalError") from None
    return obj


def conditions_hold(hook: Obj, call: Call, request: Obj) -> bool:
    """A webhook's matchConditions (CEL over object, oldObject and request): all must hold for
    it to be called. One mikro cannot evaluate counts as holding (the webhook decides); a
    runtime error is a failed call (ValueError), as the apiserver treats it."""
    from mikro.api import celrules

    variables = {"object": call.obj, "oldObject": call.old, "request": request}
    for condition in hook.get("matchConditions") or []:
        expression = condition.get("expression") if isinstance(condition, dict) else None
        if not isinstance(expression, str):
            continue
        try:
            verdict = celrules.condition_holds(expression, variables)
        except ValueError as exc:
            raise ValueError(f"failed to evaluate match condition {condition.get('name')!r}: {exc}") from None
        if verdict is False:
            return False
    return True


def hooks_of(configs: list[Obj]) -> list[Obj]:
    """Every webhook of the configurations, in the order the apiserver calls them (by
    configuration name, then as listed)."""
    ordered = sorted(configs, key=lambda c: c["metadata"]["name"])
    return [h for c in ordered for h in c.get("webhooks") or [] if isinstance(h, dict)]
