"""The policy kinds through the real registry (no Docker): each kind stored, ResourceQuota and
LimitRange admission with Kubernetes' messages, the quota, disruption, EndpointSlice and
ServiceAccount controllers, the warnings, and the printer columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mikro.api import fieldvalidation, policy
from mikro.api.resources import BY_KIND
from mikro.cli import printers
from mikro.errors import ApiError
from tests.controller_kit import Cluster

RBAC = "rbac.authorization.k8s.io/v1"


@pytest.fixture()
def cl(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def pod(name: str, resources: dict[str, Any] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    ctr: dict[str, Any] = {"name": "web", "image": "hello-ip:1"}
    if resources is not None:
        ctr["resources"] = resources
    return {"metadata": {"name": name, "labels": labels or {"app": "web"}}, "spec": {"containers": [ctr]}}


def create(cl: Cluster, kind: str, body: dict[str, Any], ns: str = "default") -> dict[str, Any]:
    res = BY_KIND[kind]
    return cl.reg.create(res, ns if res.namespaced else "", {"apiVersion": res.api_version, "kind": kind, **body})


SAMPLES = {
    "Role": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]},
    "ClusterRole": {
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x/aggregate": "true"}}]},
        "rules": [],
    },
    "RoleBinding": {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "missing"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "default"}],
    },
    "ClusterRoleBinding": {
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}],
    },
    "PodDisruptionBudget": {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
    "NetworkPolicy": {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
    "Lease": {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}},
    "PriorityClass": {"value": 1000, "description": "high"},
    "ResourceQuota": {"spec": {"hard": {"pods": "10"}}},
    "LimitRange": {"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}},
    "PodTemplate": {"template": {"spec": {"containers": [{"name": "a", "image": "hello-ip:1"}]}}},
    "EndpointSlice": {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]},
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_kind_is_stored_and_read_back(cl: Cluster, kind: str) -> None:
    obj = create(cl, kind, {"metadata": {"name": "x"}, **SAMPLES[kind]})
    res = BY_KIND[kind]
    back = cl.reg.get(res, "default" if res.namespaced else "", "x")
    assert back["metadata"]["uid"] == obj["metadata"]["uid"]
    for key in SAMPLES[kind]:
        assert key in back


def test_a_binding_to_a_missing_role_is_accepted(cl: Cluster) -> None:
    obj = create(cl, "RoleBinding", {"metadata": {"name": "b"}, **SAMPLES["RoleBinding"]})
    assert obj["roleRef"]["name"] == "missing"


def test_limit_range_is_defaulted_as_upstream() -> None:
    lr = {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "4Mi"}}]}}
    policy.default_limit_range(lr)
    assert lr["spec"]["limits"][0]["default"] == {"cpu": "2"}
    assert lr["spec"]["limits"][0]["defaultRequest"] == {"cpu": "2", "memory": "4Mi"}


def test_limit_range_defaults_a_pods_containers(cl: Cluster) -> None:
    create(cl, "LimitRange", {"metadata": {"name": "lr"}, "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"}, "defaultRequest": {"cpu": "100m"}}
    ]}})
    got = cl.reg.create(BY_KIND["Pod"], "default", pod("p"))
    res = got["spec"]["containers"][0]["resources"]
    assert res["limits"] == {"cpu": "500m", "memory": "128Mi"}
    assert res["requests"] == {"cpu": "100m", "memory": "128Mi"}


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"limits": {"cpu": "2"}}, 'pods "p" is forbidden: maximum cpu usage per Container is 1, but limit is 2'),
        (
            {"limits": {"cpu": "1"}, "requests": {"cpu": "1", "memory": "1Mi"}},
            'pods "p" is forbidden: minimum memory usage per Container is 4Mi, but request is 1Mi',
        ),
    ],
)
def test_limit_range_refuses_outside_min_max(cl: Cluster, resources: dict[str, Any], message: str) -> None:
    create(cl, "LimitRange", {"metadata": {"name": "lr"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "4Mi"}, "defaultRequest": {"memory": "8Mi"}}
    ]}})
    with pytest.raises(ApiError) as err:
        cl.reg.create(BY_KIND["Pod"], "default", pod("p", resources))
    assert err.value.code == 403
    assert err.value.message == message
    assert cl.store.find(BY_KIND["Pod"], "default", "p") is None


def test_quota_counts_pods_and_refuses_with_kubernetes_message(cl: Cluster) -> None:
    create(cl, "ResourceQuota", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "2"}}})
    cl.reg.create(BY_KIND["Pod"], "default", pod("a"))
    cl.reg.create(BY_KIND["Pod"], "default", pod("b"))
    with pytest.raises(ApiError) as err:
        cl.reg.create(BY_KIND["Pod"], "default", pod("c"))
    assert err.value.code == 403
    assert err.value.message == (
        'pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
    )
    cl.sync()
    status = cl.store.get(BY_KIND["ResourceQuota"], "default", "q")["status"]
    assert status == {"hard": {"pods": "2"}, "used": {"pods": "2"}}


def test_quota_sums_requests_and_needs_them_specified(cl: Cluster) -> None:
    create(cl, "ResourceQuota", {"metadata": {"name": "compute"}, "spec": {"hard": {"requests.cpu": "1", "limits.memory": "1Gi"}}})
    with pytest.raises(ApiError) as err:
        cl.reg.create(BY_KIND["Pod"], "default", pod("bare"))
    assert err.value.message == (
        'pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: web; requests.cpu for: web'
    )
    cl.reg.create(BY_KIND["Pod"], "default", pod("a", {"requests": {"cpu": "600m"}, "limits": {"memory": "512Mi"}}))
    with pytest.raises(ApiError) as err:
        cl.reg.create(BY_KIND["Pod"], "default", pod("b", {"requests": {"cpu": "500m"}, "limits": {"memory": "256Mi"}}))
    assert err.value.message == (
        'pods "b" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, '
        "used: requests.cpu=600m, limited: requests.cpu=1"
    )
    cl.sync()
    used = cl.store.get(BY_KIND["ResourceQuota"], "default", "compute")["status"]["used"]
    assert used == {"requests.cpu": "600m", "limits.memory": "512Mi"}


def test_quota_counts_other_kinds_and_ignores_other_namespaces(cl: Cluster) -> None:
    create(cl, "ResourceQuota", {"metadata": {"name": "q"}, "spec": {"hard": {"configmaps": "1", "count/secrets": "5"}}})
    create(cl, "ConfigMap", {"metadata": {"name": "one"}})
    create(cl, "ConfigMap", {"metadata": {"name": "elsewhere"}}, ns="kube-system")
    with pytest.raises(ApiError) as err:
        create(cl, "ConfigMap", {"metadata": {"name": "two"}})
    assert err.value.message == (
        'configmaps "two" is forbidden: exceeded quota: q, requested: configmaps=1, used: configmaps=1, limited: configmaps=1'
    )


def test_finished_pods_do_not_count(cl: Cluster) -> None:
    create(cl, "ResourceQuota", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}})
    cl.reg.create(BY_KIND["Pod"], "default", pod("done"))
    cl.set_pod("done", ready=False, phase="Succeeded")
    cl.reg.create(BY_KIND["Pod"], "default", pod("next"))


@pytest.mark.parametrize(
    ("spec", "pods", "ready", "want"),
    [
        ({"minAvailable": 1}, 3, 3, (3, 1, 2, 3)),
        ({"minAvailable": "50%"}, 3, 2, (2, 2, 0, 3)),
        ({"maxUnavailable": 1}, 3, 3, (3, 2, 1, 3)),
        ({"maxUnavailable": "34%"}, 3, 1, (1, 1, 0, 3)),
        ({"minAvailable": 5}, 2, 2, (2, 5, 0, 2)),
    ],
)
def test_pdb_status_from_selected_pods(
    cl: Cluster, spec: dict[str, Any], pods: int, ready: int, want: tuple[int, int, int, int]
) -> None:
    create(cl, "PodDisruptionBudget", {"metadata": {"name": "pdb"}, "spec": {**spec, "selector": {"matchLabels": {"app": "web"}}}})
    for i in range(pods):
        cl.reg.create(BY_KIND["Pod"], "default", pod(f"p{i}"))
        cl.set_pod(f"p{i}", ready=i < ready)
    cl.reg.create(BY_KIND["Pod"], "default", pod("other", labels={"app": "other"}))
    cl.set_pod("other")
    cl.sync()
    status = cl.store.get(BY_KIND["PodDisruptionBudget"], "default", "pdb")["status"]
    got = (status["currentHealthy"], status["desiredHealthy"], status["disruptionsAllowed"], status["expectedPods"])
    assert got == want
    assert status["conditions"][0]["type"] == "DisruptionAllowed"
    assert status["conditions"][0]["status"] == ("True" if want[2] else "False")


def test_endpoint_slices_follow_endpoints(cl: Cluster) -> None:
    create(cl, "Service", {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    cl.reg.create(BY_KIND["Pod"], "default", pod("a"))
    cl.reg.create(BY_KIND["Pod"], "default", pod("b"))
    cl.set_pod("a")
    cl.set_pod("b", ready=False)
    cl.sync()
    cl.sync()
    slices = [s for s in cl.store.list(BY_KIND["EndpointSlice"], "default")[0]
              if s["metadata"]["labels"].get("kubernetes.io/service-name") == "web"]
    assert len(slices) == 1
    s = slices[0]
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    ready = {e["targetRef"]["name"]: e["conditions"]["ready"] for e in s["endpoints"]}
    assert ready == {"a": True, "b": False}
    cl.reg.delete(BY_KIND["Service"], "default", "web")
    cl.sync()
    assert not [x for x in cl.store.list(BY_KIND["EndpointSlice"], "default")[0]
                if x["metadata"]["labels"].get("kubernetes.io/service-name") == "web"]


def test_every_namespace_gets_a_default_service_account(cl: Cluster) -> None:
    create(cl, "Namespace", {"metadata": {"name": "team"}})
    cl.sync()
    assert cl.store.find(BY_KIND["ServiceAccount"], "team", "default") is not None
    assert cl.store.find(BY_KIND["ServiceAccount"], "default", "default") is not None


RC_SAMPLE = {
    "spec": {
        "replicas": 1,
        "selector": {"app": "w"},
        "template": {"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "c", "image": "hello-ip:1"}]}},
    }
}


@pytest.mark.parametrize(
    ("kind", "warning"),
    [
        ("NetworkPolicy", policy.NETWORK_POLICY_WARNING),
        ("Role", policy.RBAC_WARNING),
        ("ClusterRoleBinding", policy.RBAC_WARNING),
    ],
)
def test_unenforced_kinds_warn(cl: Cluster, kind: str, warning: str) -> None:
    token = fieldvalidation.start_request()
    try:
        create(cl, kind, {"metadata": {"name": "w"}, **SAMPLES.get(kind, RC_SAMPLE)})
        assert fieldvalidation.warnings() == [warning]
    finally:
        fieldvalidation.end_request(token)


def test_a_configmap_does_not_warn(cl: Cluster) -> None:
    token = fieldvalidation.start_request()
    try:
        create(cl, "ConfigMap", {"metadata": {"name": "c"}})
        assert fieldvalidation.warnings() == []
    finally:
        fieldvalidation.end_request(token)


def test_printer_columns() -> None:
    quota = {"metadata": {"name": "q", "creationTimestamp": "2026-01-01T00:00:00Z"},
             "spec": {"hard": {"pods": "2", "limits.cpu": "2", "requests.cpu": "1"}},
             "status": {"hard": {"pods": "2", "limits.cpu": "2", "requests.cpu": "1"}, "used": {"pods": "1", "limits.cpu": "0", "requests.cpu": "100m"}}}
    headers, rows = printers.rows("ResourceQuota", [quota], False)
    assert headers == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert rows[0][2:] == ["pods: 1/2, requests.cpu: 100m/1", "limits.cpu: 0/2"]
    binding = {"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
               "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}, {"kind": "User", "name": "jane"}]}
    headers, rows = printers.rows("RoleBinding", [binding], True)
    assert headers == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert rows[0][1] == "Role/r" and rows[0][3:] == ["jane", "", "ns/sa"]
    pdb = {"metadata": {"name": "p"}, "spec": {"minAvailable": 1}, "status": {"disruptionsAllowed": 2}}
    headers, rows = printers.rows("PodDisruptionBudget", [pdb], False)
    assert headers == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]
    assert rows[0][1:4] == ["1", "N/A", "2"]
    headers, rows = printers.rows("NetworkPolicy", [{"metadata": {"name": "n"}, "spec": {"podSelector": {}}}], False)
    assert rows[0][1] == "<none>"


def test_rbac_names_are_path_segments(cl: Cluster) -> None:
    create(cl, "ClusterRole", {"metadata": {"name": "system:aggregate-to-x"}, "rules": []})
    with pytest.raises(ApiError) as err:
        create(cl, "Role", {"metadata": {"name": "a/b"}, "rules": []})
    assert err.value.code == 422
    assert "metadata.name: Invalid value: \"a/b\": may not contain '/'" in err.value.message


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        (
            "RoleBinding",
            {"subjects": []},
            'RoleBinding.rbac.authorization.k8s.io "bad" is invalid: [roleRef.apiGroup: Unsupported value: "": '
            'supported values: "rbac.authorization.k8s.io"; roleRef.kind: Unsupported value: "": supported values: '
            '"Role", "ClusterRole"; roleRef.name: Required value]',
        ),
        (
            "Role",
            {"rules": [{"apiGroups": [""], "resources": ["pods"]}]},
            'Role.rbac.authorization.k8s.io "bad" is invalid: rules[0].verbs: Required value: verbs must contain at least one value',
        ),
        (
            "Role",
            {"rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]},
            'Role.rbac.authorization.k8s.io "bad" is invalid: rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: '
            "namespaced rules cannot apply to non-resource URLs",
        ),
        (
            "ClusterRoleBinding",
            {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
             "subjects": [{"kind": "ServiceAccount", "name": "a"}]},
            'ClusterRoleBinding.rbac.authorization.k8s.io "bad" is invalid: subjects[0].namespace: Required value',
        ),
        (
            "PodDisruptionBudget",
            {"spec": {"minAvailable": 1, "maxUnavailable": 1}},
            'PodDisruptionBudget.policy "bad" is invalid: spec: Invalid value: minAvailable and maxUnavailable cannot be both set',
        ),
    ],
)
def test_bad_policy_objects_are_refused_in_kubernetes_words(cl: Cluster, kind: str, body: dict[str, Any], message: str) -> None:
    with pytest.raises(ApiError) as err:
        create(cl, kind, {"metadata": {"name": "bad"}, **body})
    assert (err.value.code, err.value.message) == (422, message)
    res = BY_KIND[kind]
    assert cl.store.find(res, "default" if res.namespaced else "", "bad") is None
