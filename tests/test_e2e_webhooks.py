"""Admission webhooks served from a pod, as charts install them (cert-manager, ingress-nginx's
admission, policy engines), driven by real kubectl 1.32 against a real mikro: a validating
webhook refuses with Kubernetes' wording, a mutating one labels what it admits, selectors keep
other namespaces out, and failurePolicy Fail refuses writes once the webhook is gone."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

import pytest

from .certs import self_signed
from .conftest import Mikro, real_kubectl, wait_for

pytestmark = pytest.mark.docker
SERVER = """\
import base64, json, ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["request"]
        response = {"uid": request["uid"], "allowed": True}
        if self.path.startswith("/validate") and request["name"] == "forbidden":
            response = {"uid": request["uid"], "allowed": False,
                        "status": {"message": "configmaps named forbidden are not allowed"}}
        elif self.path.startswith("/mutate"):
            patch = [{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}]
            response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/tls/tls.crt", "/tls/tls.key")
server = ThreadingHTTPServer(("0.0.0.0", 8443), Hook)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def stack(cert: bytes, key: bytes) -> str:
    ca = base64.b64encode(cert).decode()
    hook = """
  clientConfig:
    service: {{namespace: hooks, name: hook, path: {path}}}
    caBundle: {ca}
  rules: [{{operations: [CREATE, UPDATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}}]
  namespaceSelector: {{matchLabels: {{webhook: "on"}}}}
  sideEffects: None
  admissionReviewVersions: [v1]
  failurePolicy: Fail
"""
    return f"""
apiVersion: v1
kind: Namespace
metadata: {{name: hooks}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: hooked, labels: {{webhook: "on"}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: hook-tls, namespace: hooks}}
type: kubernetes.io/tls
data: {{tls.crt: {ca}, tls.key: {base64.b64encode(key).decode()}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: hook-code, namespace: hooks}}
data:
  server.py: |
{textwrap.indent(SERVER, "    ")}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hook, namespace: hooks}}
spec:
  selector: {{matchLabels: {{app: hook}}}}
  template:
    metadata: {{labels: {{app: hook}}}}
    spec:
      containers:
      - name: hook
        image: mikro/python:3.11
        command: [python3, /code/server.py]
        readinessProbe: {{tcpSocket: {{port: 8443}}, periodSeconds: 1}}
        volumeMounts: [{{name: code, mountPath: /code}}, {{name: tls, mountPath: /tls}}]
      volumes:
      - {{name: code, configMap: {{name: hook-code}}}}
      - {{name: tls, secret: {{secretName: hook-tls}}}}
---
apiVersion: v1
kind: Service
metadata: {{name: hook, namespace: hooks}}
spec:
  selector: {{app: hook}}
  ports: [{{port: 443, targetPort: 8443}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: deny}}
webhooks:
- name: deny.hooks.example.com{hook.format(path="/validate", ca=ca)}---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {{name: label}}
webhooks:
- name: label.hooks.example.com{hook.format(path="/mutate", ca=ca)}"""


def test_webhooks_from_a_pod_admit_mutate_and_refuse(mikro: Mikro, tmp_path: Path) -> None:
    kubectl = real_kubectl(mikro, tmp_path)
    cert, key = self_signed("hook.hooks.svc")
    manifest = tmp_path / "hooks.yaml"
    manifest.write_text(stack(cert, key))
    applied = kubectl("apply", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/deny created" in applied.stdout
    wait_for(
        lambda: kubectl("rollout", "status", "deployment/hook", "-n", "hooks", "--timeout=5s").returncode == 0,
        90,
        what="the webhook's pod ready",
    )
    assert kubectl("get", "validatingwebhookconfigurations").stdout.split()[3:5] == ["deny", "1"]

    # the proxy may take a moment to route to the new pod: the first writes retry until it does
    wait_for(
        lambda: kubectl("create", "configmap", "fine", "-n", "hooked").returncode == 0, 30, what="an admitted write"
    )
    labels = kubectl("get", "configmap", "fine", "-n", "hooked", "-o", "jsonpath={.metadata.labels.mutated}")
    assert labels.stdout == "yes"  # the mutating webhook's JSONPatch
    refused = kubectl("create", "configmap", "forbidden", "-n", "hooked")
    assert refused.returncode == 1
    assert (
        'configmaps "forbidden" is forbidden: admission webhook "deny.hooks.example.com" denied the request: '
        "configmaps named forbidden are not allowed" in refused.stderr
    )
    # namespaceSelector: a namespace without the label is not the webhooks' concern
    elsewhere = kubectl("create", "configmap", "forbidden", "-n", "default")
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert kubectl("get", "configmap", "forbidden", "-n", "default", "-o", "jsonpath={.metadata.labels}").stdout == ""

    # failurePolicy Fail: with the webhook gone, its namespace's writes are refused
    assert kubectl("delete", "deployment", "hook", "-n", "hooks").returncode == 0
    attempts = iter(range(1000))  # a new name each try: the terminating pod may still admit one

    def refused_without_webhook() -> bool:
        done = kubectl("create", "configmap", f"later-{next(attempts)}", "-n", "hooked")
        return (
            done.returncode == 1
            and 'Internal error occurred: failed calling webhook "label.hooks.example.com"' in done.stderr
        )

    wait_for(refused_without_webhook, 60, what="writes refused once the webhook is gone")
    assert kubectl("delete", "validatingwebhookconfiguration", "deny").returncode == 0
    assert kubectl("delete", "mutatingwebhookconfiguration", "label").returncode == 0
    assert kubectl("create", "configmap", "later", "-n", "hooked").returncode == 0
