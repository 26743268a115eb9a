"""Authentication and authorization: RBAC evaluation (table-driven, pure), ServiceAccount token
signing and verification, request attributes, and real kubectl 1.32 against an in-process API
server (`kubectl create token`, a token's 403 in Kubernetes' words, `kubectl auth can-i --as`).
No Docker."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jwt
import pytest

from mikro.api import access, rbac, tokens
from tests.kubectl_harness import in_process_cluster

SA_USER = "system:serviceaccount:team:robot"
SA_GROUPS = rbac.service_account_groups("team")


def meta(name: str, ns: str | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if ns:
        out["namespace"] = ns
    if labels:
        out["labels"] = labels
    return out


POLICY = rbac.Policy(
    roles=[
        {"metadata": meta("pod-reader", "team"), "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}]},
        {"metadata": meta("one-cm", "team"), "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get", "update"]}]},
        {"metadata": meta("pod-reader", "other"), "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
    ],
    cluster_roles=[
        {"metadata": meta("aggregate"), "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]}, "rules": []},
        {"metadata": meta("deploy-scaler", labels={"agg": "true"}), "rules": [{"apiGroups": ["apps"], "resources": ["deployments/scale", "*/status"], "verbs": ["patch"]}]},
        {"metadata": meta("health"), "rules": [{"nonResourceURLs": ["/healthz", "/metrics/*"], "verbs": ["get"]}]},
        {"metadata": meta("node-viewer"), "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]},
    ],
    role_bindings=[
        {"metadata": meta("read", "team"), "roleRef": {"kind": "Role", "name": "pod-reader"}, "subjects": [{"kind": "ServiceAccount", "name": "robot"}]},
        {"metadata": meta("cm", "team"), "roleRef": {"kind": "Role", "name": "one-cm"}, "subjects": [{"kind": "Group", "name": "system:serviceaccounts:team"}]},
        {"metadata": meta("agg", "team"), "roleRef": {"kind": "ClusterRole", "name": "aggregate"}, "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "team"}]},
        {"metadata": meta("dangling", "team"), "roleRef": {"kind": "Role", "name": "missing"}, "subjects": [{"kind": "ServiceAccount", "name": "robot"}]},
    ],
    cluster_role_bindings=[
        {"metadata": meta("health"), "roleRef": {"kind": "ClusterRole", "name": "health"}, "subjects": [{"kind": "User", "name": SA_USER}]},
        {"metadata": meta("nodes"), "roleRef": {"kind": "ClusterRole", "name": "node-viewer"}, "subjects": [{"kind": "Group", "name": "jane-group"}]},
    ],
)


@pytest.mark.parametrize(
    ("attrs", "user", "groups", "want"),
    [
        (rbac.Attributes("list", "pods", namespace="team"), SA_USER, SA_GROUPS, True),
        (rbac.Attributes("watch", "pods", namespace="team"), SA_USER, SA_GROUPS, True),
        (rbac.Attributes("get", "pods", subresource="log", name="p", namespace="team"), SA_USER, SA_GROUPS, True),
        (rbac.Attributes("delete", "pods", name="p", namespace="team"), SA_USER, SA_GROUPS, False),
        (rbac.Attributes("list", "pods", namespace="default"), SA_USER, SA_GROUPS, False),
        (rbac.Attributes("list", "pods", group="apps", namespace="team"), SA_USER, SA_GROUPS, False),
        (rbac.Attributes("get", "configmaps", name="settings", namespace="team"), SA_USER, SA_GROUPS, True),
        (rbac.Attributes("get", "configmaps", name="other", namespace="team"), SA_USER, SA_GROUPS, False),
        (rbac.Attributes("list", "configmaps", namespace="team"), SA_USER, SA_GROUPS, False),
        (rbac.Attributes("patch", "deployments", group="apps", subresource="scale", name="w", namespace="team"), SA_USER, SA_GROUPS, True),
        (rbac.Attributes("patch", "statefulsets", group="apps", subresource="status", name="w", namespace="team"), SA_USER, SA_GROUPS, True),
        (rbac.Attributes("patch", "deployments", group="apps", name="w", namespace="team"), SA_USER, SA_GROUPS, False),
        (rbac.Attributes("get", path="/healthz"), SA_USER, SA_GROUPS, True),
        (rbac.Attributes("get", path="/metrics/cadvisor"), SA_USER, SA_GROUPS, True),
        (rbac.Attributes("post", path="/healthz"), SA_USER, SA_GROUPS, False),
        (rbac.Attributes("list", "nodes"), "jane", ["jane-group"], True),
        (rbac.Attributes("list", "nodes"), SA_USER, SA_GROUPS, False),
        (rbac.Attributes("list", "pods", namespace="team"), "system:serviceaccount:team:other", rbac.service_account_groups("team"), False),
        (rbac.Attributes("delete", "anything", namespace="x"), "root", ["system:masters"], True),
    ],
)
def test_rbac_evaluation(attrs: rbac.Attributes, user: str, groups: list[str], want: bool) -> None:
    assert rbac.allowed(user, groups, attrs, POLICY) is want


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        (
            rbac.Attributes("list", "pods", namespace="ns"),
            'pods is forbidden: User "u" cannot list resource "pods" in API group "" in the namespace "ns"',
        ),
        (
            rbac.Attributes("get", "deployments", group="apps", name="w", namespace="ns"),
            'deployments.apps "w" is forbidden: User "u" cannot get resource "deployments" in API group "apps" in the namespace "ns"',
        ),
        (
            rbac.Attributes("create", "serviceaccounts", subresource="token", name="sa", namespace="ns"),
            'serviceaccounts "sa" is forbidden: User "u" cannot create resource "serviceaccounts/token" in API group "" in the namespace "ns"',
        ),
        (
            rbac.Attributes("list", "nodes"),
            'nodes is forbidden: User "u" cannot list resource "nodes" in API group "" at the cluster scope',
        ),
        (rbac.Attributes("get", path="/metrics"), 'forbidden: User "u" cannot get path "/metrics"'),
    ],
)
def test_forbidden_message(attrs: rbac.Attributes, message: str) -> None:
    assert rbac.forbidden_message("u", attrs) == message


@pytest.mark.parametrize(
    ("method", "path", "query", "want"),
    [
        ("GET", "/api/v1/namespaces/ns/pods", {}, rbac.Attributes("list", "pods", namespace="ns")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, rbac.Attributes("watch", "pods", namespace="ns")),
        ("GET", "/api/v1/pods", {}, rbac.Attributes("list", "pods")),
        ("DELETE", "/apis/apps/v1/namespaces/ns/deployments", {}, rbac.Attributes("deletecollection", "deployments", group="apps", namespace="ns")),
        ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/w/scale", {}, rbac.Attributes("patch", "deployments", group="apps", subresource="scale", name="w", namespace="ns")),
        ("GET", "/api/v1/namespaces/ns", {}, rbac.Attributes("get", "namespaces", name="ns", namespace="ns")),
        ("GET", "/api/v1/namespaces", {}, rbac.Attributes("list", "namespaces")),
        ("GET", "/version", {}, rbac.Attributes("get", path="/version")),
        ("GET", "/apis/apps/v1", {}, rbac.Attributes("get", path="/apis/apps/v1")),
    ],
)
def test_request_attributes(method: str, path: str, query: dict[str, str], want: rbac.Attributes) -> None:
    assert access.attributes(method, path, query) == want


def test_token_round_trip_and_claims() -> None:
    issuer = tokens.Issuer.ephemeral()
    token, expires = issuer.issue("team", "robot", "uid-1", 1_000_000, 3600)
    assert expires == 1_003_600
    claims = issuer.verify(token, now=1_000_100)
    assert claims == tokens.Claims("team", "robot", "uid-1", 1_003_600)
    assert claims.username == SA_USER
    body = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert body["sub"] == SA_USER and body["kubernetes.io"]["serviceaccount"] == {"name": "robot", "uid": "uid-1"}
    assert jwt.get_unverified_header(token)["alg"] == "ES256"


def test_tokens_that_are_refused() -> None:
    issuer = tokens.Issuer.ephemeral()
    token, _ = issuer.issue("team", "robot", "uid-1", 1_000_000, 3600)
    assert issuer.verify(token, now=1_003_600) is None  # expired
    assert tokens.Issuer.ephemeral().verify(token, now=1_000_100) is None  # another key
    head, body, sig = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged["sub"] = "system:serviceaccount:kube-system:admin"
    forged_body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    assert issuer.verify(f"{head}.{forged_body}.{sig}", now=1_000_100) is None  # tampered
    unsigned = jwt.encode({"sub": SA_USER, "exp": 2_000_000, "iat": 1_000_000}, key=None, algorithm="none")
    assert issuer.verify(unsigned, now=1_000_100) is None  # alg none
    other_aud, _ = issuer.issue("team", "robot", "uid-1", 1_000_000, 3600, audiences=["vault"])
    assert issuer.verify(other_aud, now=1_000_100) is None  # not meant for the API server


def test_the_signing_key_is_kept(tmp_path: Path) -> None:
    first = tokens.Issuer.load_or_create(tmp_path / "sa.key")
    token, _ = first.issue("team", "robot", "u", 1_000_000)
    assert (tmp_path / "sa.key").stat().st_mode & 0o777 == 0o600
    assert tokens.Issuer.load_or_create(tmp_path / "sa.key").verify(token, now=1_000_001) is not None


def _get(port: int, ca: Path, path: str, token: str) -> tuple[int, dict[str, Any]]:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


ROLE_YAML = """
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: robot, namespace: default}
"""


def test_kubectl_tokens_rbac_and_can_i(tmp_path: Path) -> None:
    with in_process_cluster(tmp_path) as cluster:
        manifest = tmp_path / "rbac.yaml"
        manifest.write_text(ROLE_YAML)
        applied = cluster.kubectl("apply", "-f", str(manifest))
        assert "role.rbac.authorization.k8s.io/pod-reader created" in applied.stdout
        assert "Warning: " + access_warning() in applied.stderr
        token = cluster.kubectl("create", "token", "robot").stdout.strip()
        ca = tmp_path / "pki" / "ca.crt"
        code, body = _get(cluster.port, ca, "/api/v1/namespaces/default/pods", token)
        assert (code, body["kind"]) == (200, "PodList")
        code, body = _get(cluster.port, ca, "/api/v1/namespaces/default/secrets", token)
        assert code == 403
        assert body["message"] == (
            'secrets is forbidden: User "system:serviceaccount:default:robot" cannot list resource "secrets" '
            'in API group "" in the namespace "default"'
        )
        assert body["reason"] == "Forbidden"
        who = cluster.kubectl("auth", "whoami", "-o", "json", f"--token={token}").stdout
        assert json.loads(who)["status"]["userInfo"]["username"] == "system:serviceaccount:default:robot"
        as_sa = "--as=system:serviceaccount:default:robot"
        assert cluster.kubectl("auth", "can-i", as_sa, "list", "pods").stdout.strip() == "yes"
        refused = cluster.kubectl("auth", "can-i", as_sa, "list", "secrets", check=False)
        assert (refused.returncode, refused.stdout.strip()) == (1, "no")
        assert cluster.kubectl("auth", "can-i", "list", "secrets").stdout.strip() == "yes"  # the admin
        listed = cluster.kubectl("auth", "can-i", "--list", as_sa).stdout
        assert any(line.split()[:1] == ["pods"] and "[get list watch]" in line for line in listed.splitlines()), listed
        assert "secrets" not in listed
        impersonated = cluster.kubectl("get", "secrets", as_sa, check=False)
        assert impersonated.returncode == 1
        assert 'cannot list resource "secrets"' in impersonated.stderr
        cluster.kubectl("delete", "serviceaccount", "robot")
        code, _ = _get(cluster.port, ca, "/api/v1/namespaces/default/pods", token)
        assert code == 401


def access_warning() -> str:
    from mikro.api import policy

    return policy.RBAC_WARNING


@pytest.mark.parametrize(
    ("role", "attrs", "want"),
    [
        ("view", rbac.Attributes("list", "pods", namespace="team"), True),
        ("view", rbac.Attributes("get", "deployments", group="apps", name="w", namespace="team"), True),
        ("view", rbac.Attributes("list", "secrets", namespace="team"), False),
        ("view", rbac.Attributes("create", "pods", namespace="team"), False),
        ("edit", rbac.Attributes("list", "secrets", namespace="team"), True),
        ("edit", rbac.Attributes("patch", "deployments", group="apps", subresource="scale", name="w", namespace="team"), True),
        ("edit", rbac.Attributes("list", "pods", namespace="team"), True),  # edit holds view
        ("edit", rbac.Attributes("create", "rolebindings", group="rbac.authorization.k8s.io", namespace="team"), False),
        ("admin", rbac.Attributes("create", "rolebindings", group="rbac.authorization.k8s.io", namespace="team"), True),
        ("admin", rbac.Attributes("watch", "pods", namespace="team"), True),  # admin holds edit holds view
        ("admin", rbac.Attributes("list", "pods", namespace="elsewhere"), False),
        ("cluster-admin", rbac.Attributes("delete", "nodes", name="n"), True),
    ],
)
def test_default_cluster_roles_bound_in_a_namespace(role: str, attrs: rbac.Attributes, want: bool) -> None:
    binding = {"metadata": meta("b", "team"), "roleRef": {"kind": "ClusterRole", "name": role},
               "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "team"}]}
    policy = rbac.Policy([], rbac.default_cluster_roles(), [binding], [])
    if role == "cluster-admin":
        policy = rbac.Policy([], rbac.default_cluster_roles(), [], [{**binding, "metadata": meta("b")}])
    assert rbac.allowed(SA_USER, SA_GROUPS, attrs, policy) is want


def test_a_pod_bound_token_dies_with_its_pod(tmp_path: Path) -> None:
    from mikro.api.resources import BY_KIND
    from tests.controller_kit import Cluster

    cl = Cluster(tmp_path)
    cl.sync()  # the default ServiceAccount
    account = cl.store.get(BY_KIND["ServiceAccount"], "default", "default")
    pod = cl.reg.create(BY_KIND["Pod"], "default", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}})
    issuer = tokens.Issuer.ephemeral()
    now = int(__import__("time").time())
    token, _ = issuer.issue("default", "default", account["metadata"]["uid"], now, 3600,
                            bound={"kind": "Pod", "name": "p", "uid": pod["metadata"]["uid"]})
    user = access.authenticate(f"Bearer {token}", "admin-token", issuer, cl.store)
    assert user is not None and user.name == "system:serviceaccount:default:default"
    cl.store.delete(BY_KIND["Pod"], "default", "p")
    assert access.authenticate(f"Bearer {token}", "admin-token", issuer, cl.store) is None
