"""SelfSubjectAccessReview and SelfSubjectReview (`kubectl auth can-i`, `kubectl auth whoami`).

The admin (the holder of `mikro config`'s token) may do everything, as system:masters may on
Kubernetes; ServiceAccounts get what RBAC grants them (mikro.api.access decides). Pure: request
body in, review out. SubjectAccessReview asks about the user its spec names.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from mikro.errors import ApiError

USER = {"username": "admin", "groups": ["system:masters", "system:authenticated"]}

# (group, plural) -> kind; every group at v1
REVIEWS = {
    ("authorization.k8s.io", "selfsubjectaccessreviews"): "SelfSubjectAccessReview",
    ("authorization.k8s.io", "selfsubjectrulesreviews"): "SelfSubjectRulesReview",
    ("authorization.k8s.io", "subjectaccessreviews"): "SubjectAccessReview",
    ("authentication.k8s.io", "selfsubjectreviews"): "SelfSubjectReview",
}
GROUPS = sorted({group for group, _ in REVIEWS})


def group_list_entries() -> list[dict[str, Any]]:
    gvs = [{"groupVersion": f"{group}/v1", "version": "v1"} for group in GROUPS]
    return [{"name": g, "versions": [gv], "preferredVersion": gv} for g, gv in zip(GROUPS, gvs, strict=True)]


def discovery(path: str) -> dict[str, Any] | None:
    """/apis/<group> and /apis/<group>/v1 for the review groups."""
    parts = [p for p in path.split("/") if p]
    if len(parts) not in (2, 3) or parts[0] != "apis" or parts[1] not in GROUPS:
        return None
    group = parts[1]
    gv = {"groupVersion": f"{group}/v1", "version": "v1"}
    if len(parts) == 2:
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [gv], "preferredVersion": gv}
    if parts[2] != "v1":
        return None
    listed = [
        {"name": plural, "singularName": "", "namespaced": False, "kind": kind, "verbs": ["create"]}
        for (g, plural), kind in REVIEWS.items()
        if g == group
    ]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/v1", "resources": listed}


def review_path(path: str) -> tuple[str, str] | None:
    """(group, plural) of a review POSTed to this path, or None."""
    parts = [p for p in path.split("/") if p]
    if len(parts) == 4 and parts[0] == "apis" and parts[2] == "v1" and (parts[1], parts[3]) in REVIEWS:
        return parts[1], parts[3]
    return None


def review(
    key: tuple[str, str],
    body: Any,
    user: dict[str, Any] | None = None,
    decide: Callable[[str, dict[str, Any]], bool] | None = None,
    rules: Callable[[str], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The review answered for `user` (the admin when None); `decide(kind, spec)` says whether an
    access review is allowed (everything when None)."""
    group, _ = key
    kind = REVIEWS[key]
    if not isinstance(body, dict):
        raise ApiError(400, f"the body of a {kind} must be an object")
    out = copy.deepcopy(body)
    out["apiVersion"], out["kind"] = f"{group}/v1", kind
    out.setdefault("metadata", {}).setdefault("creationTimestamp", None)
    if kind == "SelfSubjectReview":
        out["status"] = {"userInfo": copy.deepcopy(user or USER)}
    elif kind == "SelfSubjectRulesReview" and rules is not None:
        out["status"] = rules(str((out.get("spec") or {}).get("namespace") or ""))
    elif kind == "SelfSubjectRulesReview":
        out["status"] = {
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": False,
        }
    else:
        spec = out.get("spec")
        if not isinstance(spec, dict) or not (spec.get("resourceAttributes") or spec.get("nonResourceAttributes")):
            raise ApiError(
                422,
                f'{kind}.{group} "" is invalid: spec.resourceAttributes: Invalid value: "null": '
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        if decide is None or decide(kind, spec):
            out["status"] = {"allowed": True, "reason": "allowed by RBAC, or the admin user"}
        else:
            out["status"] = {"allowed": False}
    return out
