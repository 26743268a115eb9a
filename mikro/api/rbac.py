"""RBAC evaluation as kube-apiserver's RBAC authorizer does it (plugin/pkg/auth/authorizer/rbac and
pkg/apis/rbac/v1/evaluation_helpers.go): the rules of every Role and ClusterRole bound to the user,
its groups or its ServiceAccount, ClusterRoles aggregated by label, and the Forbidden message in
Kubernetes' wording. Pure: the caller passes the RBAC objects in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mikro.api.validation import selector_matches

Obj = dict[str, Any]
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class Attributes:
    """What a request asks: a verb on a resource (group, plural, subresource, name, namespace),
    or a verb on a non-resource path."""

    verb: str
    resource: str = ""
    group: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


@dataclass(frozen=True)
class Policy:
    """The cluster's RBAC objects."""

    roles: list[Obj]
    cluster_roles: list[Obj]
    role_bindings: list[Obj]
    cluster_role_bindings: list[Obj]


def service_account_user(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> list[str]:
    return ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"]


def _has(values: list[str] | None, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)  # type: ignore[operator]


def verb_matches(rule: Obj, verb: str) -> bool:
    return _has(rule.get("verbs"), verb)


def api_group_matches(rule: Obj, group: str) -> bool:
    return _has(rule.get("apiGroups"), group)


def resource_matches(rule: Obj, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for item in rule.get("resources") or []:
        if item == "*" or item == combined:
            return True
        if subresource and item == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: Obj, name: str) -> bool:
    names = rule.get("resourceNames") or []
    return not names or name in names


def non_resource_url_matches(rule: Obj, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rule_allows(rule: Obj, attrs: Attributes) -> bool:
    if not verb_matches(rule, attrs.verb):
        return False
    if attrs.is_resource:
        return (
            api_group_matches(rule, attrs.group)
            and resource_matches(rule, attrs.resource, attrs.subresource)
            and resource_name_matches(rule, attrs.name)
        )
    return non_resource_url_matches(rule, attrs.path)


def cluster_role_rules(role: Obj, cluster_roles: list[Obj], seen: set[str] | None = None) -> list[Obj]:
    """A ClusterRole's rules; with an aggregationRule, also those of every ClusterRole its
    selectors match, themselves aggregated (as the aggregation controller writes them: `admin`
    holds `edit`, which holds `view`)."""
    seen = seen if seen is not None else set()
    seen.add(role["metadata"]["name"])
    rules = list(role.get("rules") or [])
    selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    if selectors:
        for other in cluster_roles:
            if other["metadata"]["name"] in seen:
                continue
            labels = other["metadata"].get("labels") or {}
            if any(selector_matches(s, labels) for s in selectors if isinstance(s, dict)):
                rules.extend(cluster_role_rules(other, cluster_roles, seen))
    return rules


def subject_matches(subject: Obj, user: str, groups: list[str], binding_namespace: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user
    if kind == "Group":
        return subject.get("name") in groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_namespace
        return user == service_account_user(ns, str(subject.get("name", "")))
    return False


def _role_ref_rules(ref: Obj, namespace: str, policy: Policy) -> list[Obj]:
    name = ref.get("name")
    if ref.get("kind") == "ClusterRole":
        for role in policy.cluster_roles:
            if role["metadata"]["name"] == name:
                return cluster_role_rules(role, policy.cluster_roles)
        return []  # a binding to a missing role grants nothing (and is accepted)
    for role in policy.roles:
        if role["metadata"]["name"] == name and role["metadata"].get("namespace") == namespace:
            return list(role.get("rules") or [])
    return []


def rules_for(user: str, groups: list[str], namespace: str, policy: Policy) -> list[Obj]:
    """Every rule that applies to the user in `namespace` ("" for cluster scope)."""
    rules: list[Obj] = []
    for binding in policy.cluster_role_bindings:
        if any(subject_matches(s, user, groups, "") for s in binding.get("subjects") or []):
            rules += _role_ref_rules(binding.get("roleRef") or {}, "", policy)
    if namespace:
        for binding in policy.role_bindings:
            if binding["metadata"].get("namespace") != namespace:
                continue
            if any(subject_matches(s, user, groups, namespace) for s in binding.get("subjects") or []):
                rules += _role_ref_rules(binding.get("roleRef") or {}, namespace, policy)
    return rules


def allowed(user: str, groups: list[str], attrs: Attributes, policy: Policy) -> bool:
    if "system:masters" in groups:
        return True
    return any(rule_allows(r, attrs) for r in rules_for(user, groups, attrs.namespace, policy))


def forbidden_message(user: str, attrs: Attributes) -> str:
    """Kubernetes' text: `pods is forbidden: User "u" cannot list resource "pods" in API group ""
    in the namespace "ns"`."""
    if not attrs.is_resource:
        return f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (
        f'{subject} is forbidden: User "{user}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.group}" {where}'
    )


def request_verb(method: str, has_name: bool, watch: bool) -> str:
    """The RBAC verb of an HTTP request, as the API server's RequestInfo derives it."""
    if method in ("GET", "HEAD"):
        if watch:
            return "watch"
        return "get" if has_name else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if has_name else "deletecollection",
    }.get(method, method.lower())


# -- the default ClusterRoles (plugin/pkg/auth/authorizer/rbac/bootstrappolicy), abridged ----

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_AGG = "rbac.authorization.k8s.io/aggregate-to-"
_VIEWABLE = [
    ("", ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods", "pods/log",
          "pods/status", "replicationcontrollers", "replicationcontrollers/scale", "replicationcontrollers/status",
          "serviceaccounts", "services", "services/status", "events", "limitranges", "resourcequotas",
          "resourcequotas/status", "namespaces", "namespaces/status", "bindings"]),
    ("apps", ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
              "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
              "statefulsets/scale", "statefulsets/status"]),
    ("autoscaling", ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    ("batch", ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    ("policy", ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    ("networking.k8s.io", ["ingresses", "ingresses/status", "networkpolicies"]),
    ("discovery.k8s.io", ["endpointslices"]),
]
_EDITABLE = [
    ("", ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "pods/eviction", "configmaps",
          "endpoints", "persistentvolumeclaims", "replicationcontrollers", "replicationcontrollers/scale", "secrets",
          "serviceaccounts", "services", "services/proxy", "serviceaccounts/token"]),
    ("apps", ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
              "replicasets/scale", "statefulsets", "statefulsets/scale"]),
    ("autoscaling", ["horizontalpodautoscalers"]),
    ("batch", ["cronjobs", "jobs"]),
    ("policy", ["poddisruptionbudgets"]),
    ("networking.k8s.io", ["ingresses", "networkpolicies"]),
    ("discovery.k8s.io", ["endpointslices"]),
]


def default_cluster_roles() -> list[Obj]:
    """cluster-admin, admin, edit and view (aggregated, as upstream), and the roles they aggregate."""

    def role(name: str, rules: list[Obj], labels: dict[str, str] | None = None, aggregate: str | None = None) -> Obj:
        meta: Obj = {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})},
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}}
        out: Obj = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta, "rules": rules}
        if aggregate:
            out["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {_AGG + aggregate: "true"}}]}
        return out

    return [
        role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                               {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        role("admin", [], aggregate="admin"),
        role("edit", [], {_AGG + "admin": "true"}, aggregate="edit"),
        role("view", [], {_AGG + "edit": "true"}, aggregate="view"),
        role("system:aggregate-to-view", [{"apiGroups": [g], "resources": r, "verbs": _READ} for g, r in _VIEWABLE],
             {_AGG + "view": "true"}),
        role("system:aggregate-to-edit",
             [{"apiGroups": [g], "resources": r, "verbs": _WRITE} for g, r in _EDITABLE]
             + [{"apiGroups": [""], "resources": ["secrets", "pods/exec", "pods/attach", "pods/portforward"], "verbs": _READ}],
             {_AGG + "edit": "true"}),
        role("system:aggregate-to-admin",
             [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": [*_READ, *_WRITE]},
              {"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]}],
             {_AGG + "admin": "true"}),
    ]
