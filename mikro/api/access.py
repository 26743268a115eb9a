"""Who a request is and what it may do: the admin token (system:masters), ServiceAccount tokens
(mikro.api.tokens; refused once their ServiceAccount is gone), impersonation (`Impersonate-User`,
`Impersonate-Group`, for the admin only), RBAC authorization (mikro.api.rbac) for everyone else,
and the TokenRequest subresource. Pure apart from reading the store."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from mikro.api import rbac, tokens
from mikro.api.resources import BY_KIND
from mikro.errors import ApiError

ADMIN_GROUPS = ["system:masters", "system:authenticated"]
SA = BY_KIND["ServiceAccount"]
# What every authenticated user may do, as the system:discovery, system:basic-user and
# system:public-info-viewer ClusterRoles grant on Kubernetes.
BASELINE_RULES: list[dict[str, Any]] = [
    {
        "verbs": ["get"],
        "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/",
                            "/healthz", "/livez", "/readyz"],
    },
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
]


@dataclass(frozen=True)
class User:
    name: str
    groups: list[str] = field(default_factory=list)
    uid: str = ""

    @property
    def admin(self) -> bool:
        return "system:masters" in self.groups

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        return out


ADMIN = User("admin", ADMIN_GROUPS)


def authenticate(header: str, admin_token: str, issuer: tokens.Issuer, store: Any) -> User | None:
    """The user a bearer token names, or None (401)."""
    if not header.startswith("Bearer "):
        return None
    token = header[7:].strip()
    if hmac.compare_digest(token.encode(), admin_token.encode()):
        return ADMIN
    if not tokens.looks_like_jwt(token):
        return None
    claims = issuer.verify(token)
    if claims is None:
        return None
    account = store.find(SA, claims.namespace, claims.name)
    if account is None or account["metadata"].get("uid") != claims.uid or account["metadata"].get("deletionTimestamp"):
        return None  # the ServiceAccount was deleted (or deleted and made anew)
    if claims.pod is not None:
        pod = store.find(BY_KIND["Pod"], claims.namespace, claims.pod[0])
        if pod is None or pod["metadata"].get("uid") != claims.pod[1]:
            return None  # a pod-bound token dies with its pod, as on Kubernetes
    return User(claims.username, rbac.service_account_groups(claims.namespace), claims.uid)


def impersonate(user: User, headers: Any) -> User:
    """`Impersonate-User` / `Impersonate-Group`: the admin may act as anyone; others are refused."""
    name = headers.get("Impersonate-User")
    groups = headers.get_all("Impersonate-Group") if hasattr(headers, "get_all") else None
    if not name:
        if groups:
            raise ApiError(500, "requested [Impersonate-Group] without impersonating a user")
        return user
    if not user.admin:
        raise ApiError(
            403,
            f'users "{name}" is forbidden: User "{user.name}" cannot impersonate resource "users" '
            'in API group "" at the cluster scope',
        )
    groups = list(groups or [])
    if name.startswith(rbac.SA_PREFIX):
        ns = name[len(rbac.SA_PREFIX):].split(":", 1)[0]
        groups = groups or rbac.service_account_groups(ns)[:2]
    if "system:authenticated" not in groups:
        groups.append("system:authenticated")
    return User(name, groups)


def policy_of(store: Any) -> rbac.Policy:
    def items(kind: str) -> list[dict[str, Any]]:
        return store.list(BY_KIND[kind])[0]

    return rbac.Policy(items("Role"), items("ClusterRole"), items("RoleBinding"), items("ClusterRoleBinding"))


def attributes(method: str, path: str, query: dict[str, str]) -> rbac.Attributes:
    """RequestInfo: the RBAC attributes of a request path."""
    try:
        parts = [unquote(p) for p in path.split("/") if p]
    except UnicodeDecodeError:
        parts = []
    rest: list[str] | None = None
    group = ""
    if parts[:2] == ["api", "v1"] and len(parts) > 2:
        rest = parts[2:]
    elif len(parts) > 3 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    if not rest:
        return rbac.Attributes(verb=method.lower() if method != "GET" else "get", path=path)
    watch = query.get("watch") in ("true", "1")
    if rest[0] == "watch":
        watch, rest = True, rest[1:]
    ns = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        ns, rest = rest[1], rest[2:]
    elif len(rest) == 2 and rest[0] == "namespaces":
        ns = rest[1]  # a namespace object itself: its namespace is its name
    if not rest:
        return rbac.Attributes(verb=method.lower(), path=path)
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    verb = rbac.request_verb(method, bool(name), watch)
    return rbac.Attributes(verb=verb, resource=resource, group=group, subresource=sub, name=name, namespace=ns)


def allowed(user: User, attrs: rbac.Attributes, policy: rbac.Policy) -> bool:
    if user.admin:
        return True
    if any(rbac.rule_allows(rule, attrs) for rule in BASELINE_RULES):
        return True
    return rbac.allowed(user.name, user.groups, attrs, policy)


def authorize(user: User, method: str, path: str, query: dict[str, str], store: Any) -> None:
    """403 in Kubernetes' words unless RBAC allows the request (the admin may do everything)."""
    if user.admin:
        return
    attrs = attributes(method, path, query)
    if not allowed(user, attrs, policy_of(store)):
        raise ApiError(403, rbac.forbidden_message(user.name, attrs))


def review_decision(user: User, spec: dict[str, Any], store: Any) -> bool:
    """Whether `user` may do what a SubjectAccessReview spec asks."""
    res = spec.get("resourceAttributes")
    if isinstance(res, dict):
        attrs = rbac.Attributes(
            verb=str(res.get("verb", "")),
            resource=str(res.get("resource", "")),
            group=str(res.get("group", "")),
            subresource=str(res.get("subresource", "")),
            name=str(res.get("name", "")),
            namespace=str(res.get("namespace", "")),
        )
    else:
        non = spec.get("nonResourceAttributes") or {}
        attrs = rbac.Attributes(verb=str(non.get("verb", "")), path=str(non.get("path", "")))
    if attrs.verb == "*" and user.admin:
        return True
    return allowed(user, attrs, policy_of(store))


def token_request(issuer: tokens.Issuer, store: Any, ns: str, name: str, body: Any) -> dict[str, Any]:
    """POST serviceaccounts/<name>/token: a TokenRequest answered with a signed token."""
    account = store.find(SA, ns, name)
    if account is None:
        raise ApiError(404, f'serviceaccounts "{name}" not found', details={"name": name, "kind": "serviceaccounts"})
    body = body if isinstance(body, dict) else {}
    spec = dict(body.get("spec") or {})
    seconds = spec.get("expirationSeconds") or tokens.DEFAULT_EXPIRATION
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < tokens.MIN_EXPIRATION:
        raise ApiError(
            422,
            f'TokenRequest.authentication.k8s.io "{name}" is invalid: spec.expirationSeconds: Invalid value: '
            f"{seconds}: may not specify a duration less than 10 minutes",
        )
    if seconds > tokens.MAX_EXPIRATION:
        raise ApiError(
            422,
            f'TokenRequest.authentication.k8s.io "{name}" is invalid: spec.expirationSeconds: Invalid value: '
            f"{seconds}: may not specify a duration larger than 2^32 seconds",
        )
    audiences = [a for a in spec.get("audiences") or [] if isinstance(a, str)] or [tokens.AUDIENCE]
    bound = spec.get("boundObjectRef") if isinstance(spec.get("boundObjectRef"), dict) else None
    now = int(time.time())
    token, expires = issuer.issue(ns, name, account["metadata"]["uid"], now, seconds, audiences, bound)
    spec["audiences"], spec["expirationSeconds"] = audiences, seconds
    spec.setdefault("boundObjectRef", None)
    stamp = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "creationTimestamp": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": stamp},
    }


def decide(kind: str, spec: dict[str, Any], user: User, store: Any) -> bool:
    """A (Self)SubjectAccessReview: for SubjectAccessReview, the user and groups its spec names."""
    if kind == "SubjectAccessReview":
        name = str(spec.get("user") or "")
        groups = [g for g in spec.get("groups") or [] if isinstance(g, str)]
        user = User(name, groups)
    return review_decision(user, spec, store)


def rules_status(user: User, namespace: str, store: Any) -> dict[str, Any]:
    """A SelfSubjectRulesReview's status: what the user may do in `namespace` (`kubectl auth can-i
    --list`)."""
    if user.admin:
        return {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    resource_rules: list[dict[str, Any]] = []
    non_resource_rules: list[dict[str, Any]] = []
    for rule in BASELINE_RULES + rbac.rules_for(user.name, user.groups, namespace, policy_of(store)):
        if rule.get("resources"):
            entry = {"verbs": list(rule.get("verbs") or []), "apiGroups": list(rule.get("apiGroups") or []),
                     "resources": list(rule["resources"])}
            if rule.get("resourceNames"):
                entry["resourceNames"] = list(rule["resourceNames"])
            resource_rules.append(entry)
        if rule.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(rule.get("verbs") or []), "nonResourceURLs": list(rule["nonResourceURLs"])})
    return {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": False}
