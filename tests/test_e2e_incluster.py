"""One `mikro apply` of what a typical chart carries (RBAC, PDB, HPA, NetworkPolicy, quota,
limits, a CRD and a custom resource of it, and a Deployment), and the API reached from inside a pod with its mounted ServiceAccount
token: allowed where a Role says so, 403 where it does not (real Docker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mikro.api import policy

from .conftest import Mikro, wait_for

pytestmark = pytest.mark.docker

NS = "chart"
# Runs in the pod: the mounted token and CA against https://kubernetes.default.svc, and against
# $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT as client-go does. Bounded: 90 rounds.
SCRIPT = r"""
import json, os, ssl, time, urllib.error, urllib.request
base = "/var/run/secrets/kubernetes.io/serviceaccount"
ctx = ssl.create_default_context(cafile=base + "/ca.crt")
token = open(base + "/token").read()
ns = open(base + "/namespace").read()
by_ip = "https://%s:%s" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
def get(server, path):
    req = urllib.request.Request(server + path, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
for _ in range(90):
    for server in ("https://kubernetes.default.svc", by_ip):
        for what in ("pods", "secrets"):
            try:
                code, body = get(server, "/api/v1/namespaces/%s/%s" % (ns, what))
                print(json.dumps({"server": server, "what": what, "code": code, "kind": body.get("kind"), "message": body.get("message")}), flush=True)
            except Exception as e:
                print(json.dumps({"server": server, "what": what, "error": repr(e)}), flush=True)
    time.sleep(2)
time.sleep(3600)
"""

MANIFEST = f"""apiVersion: v1
kind: Namespace
metadata: {{name: {NS}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: reader, namespace: {NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: pod-reader, namespace: {NS}}}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reader-reads-pods, namespace: {NS}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}}
subjects:
- {{kind: ServiceAccount, name: reader, namespace: {NS}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {NS}-node-viewer
  labels: {{rbac.example.com/aggregate-to-view: "true"}}
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {NS}-node-viewer}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {NS}-node-viewer}}
subjects:
- {{kind: ServiceAccount, name: reader, namespace: {NS}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: api-client, namespace: {NS}}}
spec:
  minAvailable: 1
  selector: {{matchLabels: {{app: api-client}}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: api-client, namespace: {NS}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: api-client}}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: deny-all, namespace: {NS}}}
spec:
  podSelector: {{}}
  policyTypes: [Ingress]
---
apiVersion: v1
kind: ResourceQuota
metadata: {{name: compute, namespace: {NS}}}
spec:
  hard: {{pods: "4", requests.cpu: "1", limits.memory: 1Gi}}
---
apiVersion: v1
kind: LimitRange
metadata: {{name: defaults, namespace: {NS}}}
spec:
  limits:
  - type: Container
    default: {{cpu: 200m, memory: 128Mi}}
    defaultRequest: {{cpu: 100m, memory: 64Mi}}
    max: {{memory: 512Mi}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: clients.chart.example.com}}
spec:
  group: chart.example.com
  scope: Namespaced
  names: {{plural: clients, singular: client, kind: Client}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {{type: object, properties: {{endpoint: {{type: string}}}}}}
---
apiVersion: chart.example.com/v1
kind: Client
metadata: {{name: api-client, namespace: {NS}}}
spec: {{endpoint: https://kubernetes.default.svc}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api-client, namespace: {NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: api-client}}}}
  template:
    metadata: {{labels: {{app: api-client}}}}
    spec:
      serviceAccountName: reader
      terminationGracePeriodSeconds: 1
      containers:
      - name: client
        image: mikro/python:3.11
        command: {json.dumps(["python3", "-c", SCRIPT])}
"""


def test_one_apply_then_the_api_from_inside_a_pod(mikro: Mikro, tmp_path: Path) -> None:
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(MANIFEST)
    applied = mikro.run("apply", "-f", str(manifest))
    for line in (
        f"namespace/{NS} created",
        "role.rbac.authorization.k8s.io/pod-reader created",
        "rolebinding.rbac.authorization.k8s.io/reader-reads-pods created",
        f"clusterrole.rbac.authorization.k8s.io/{NS}-node-viewer created",
        f"clusterrolebinding.rbac.authorization.k8s.io/{NS}-node-viewer created",
        "poddisruptionbudget.policy/api-client created",
        "horizontalpodautoscaler.autoscaling/api-client created",
        "networkpolicy.networking.k8s.io/deny-all created",
        "resourcequota/compute created",
        "limitrange/defaults created",
        "deployment.apps/api-client created",
        "customresourcedefinition.apiextensions.k8s.io/clients.chart.example.com created",
        "client.chart.example.com/api-client created",
    ):
        assert line in applied.stdout, applied.stdout
    assert f"Warning: {policy.NETWORK_POLICY_WARNING}" in applied.stderr
    assert f"Warning: {policy.RBAC_WARNING}" in applied.stderr

    def running() -> list[dict]:
        return [p for p in mikro.pods("app=api-client", NS) if (p.get("status") or {}).get("phase") == "Running"]

    (pod,) = wait_for(running, timeout=180, what="the api-client pod running")
    name = pod["metadata"]["name"]
    ctr = pod["spec"]["containers"][0]
    assert ctr["resources"] == {"limits": {"cpu": "200m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}}
    assert any(m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount" for m in ctr["volumeMounts"])

    def answers() -> dict[tuple[str, str], dict] | None:
        logs = mikro.kubectl("logs", name, "-n", NS, check=False).stdout
        seen: dict[tuple[str, str], dict] = {}
        for line in logs.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if "code" in row:
                seen[(row["server"].split("//")[1].split(":")[0], row["what"])] = row
        return seen if len(seen) == 4 else None

    seen = wait_for(answers, timeout=120, interval=2, what="the pod's answers from the API")
    by_name = {k[1]: v for k, v in seen.items() if k[0] == "kubernetes.default.svc"}
    assert (by_name["pods"]["code"], by_name["pods"]["kind"]) == (200, "PodList")
    assert by_name["secrets"]["code"] == 403
    assert by_name["secrets"]["message"] == (
        f'secrets is forbidden: User "system:serviceaccount:{NS}:reader" cannot list resource "secrets" '
        f'in API group "" in the namespace "{NS}"'
    )
    by_ip = {k[1]: v for k, v in seen.items() if k[0] != "kubernetes.default.svc"}
    assert by_ip["pods"]["code"] == 200 and by_ip["secrets"]["code"] == 403

    pdb = mikro.json("pdb", "api-client", "-n", NS)
    wait_for(lambda: mikro.json("pdb", "api-client", "-n", NS).get("status", {}).get("currentHealthy") == 1, what="PDB status")
    assert pdb["spec"]["minAvailable"] == 1
    quota = wait_for(
        lambda: (q := mikro.json("resourcequota", "compute", "-n", NS)).get("status", {}).get("used", {}).get("pods") == "1" and q,
        what="quota usage",
    )
    assert quota["status"]["used"]["requests.cpu"] == "100m"
    listed = mikro.kubectl("get", "pdb,netpol,quota,limits,roles,rolebindings", "-n", NS).stdout
    assert "deny-all" in listed and "ALLOWED DISRUPTIONS" in listed
