"""The seed's walkthrough end to end, Services, DNS, NodePort and the ingress addon
(real Docker, host port 80 and 443 on 127.0.0.1)."""

from __future__ import annotations

import re
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from .conftest import ROOT, Mikro, wait_for

pytestmark = pytest.mark.docker
STACK = (ROOT / "examples" / "stack.yml").read_text()
SHOP = ROOT / "examples" / "multi-service.yml"

# The ingress takes host ports 80 and 443: one module at a time across concurrent runs.
USES_HOST_PORTS = True


def get(url: str, host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except OSError as err:
        return 0, str(err)


def answering_addresses(count: int = 20) -> set[str]:
    addresses = set()
    for _ in range(count):
        code, body = get("http://127.0.0.1/")
        assert code == 200, body
        addresses.add(re.search(r"\((\d+\.\d+\.\d+\.\d+)\)", body).group(1))
    return addresses


@pytest.fixture(scope="module")
def ingress(mikro: Mikro) -> Mikro:
    enabled = mikro.run("enable", "ingress")
    assert "Addon ingress is enabled" in enabled.stdout
    assert "enabled:\n    ingress" in mikro.run("status").stdout
    return mikro


def test_the_seed_walkthrough(ingress: Mikro, tmp_path: Path) -> None:
    m = ingress
    stack = tmp_path / "stack.yml"
    # The blog's stack.yml with only the image changed to the offline hello-ip image.
    stack.write_text(STACK.replace("image: clmntlxndr/ruby-hello-ip", "image: hello-ip:1"))
    applied = m.run("apply", "-f", str(stack))
    assert applied.stdout.splitlines() == [
        "deployment.apps/mon-app-deployment created",
        "service/mon-app-service created",
        "ingress.networking.k8s.io/mon-app-http-ingress created",
    ]
    m.kubectl("rollout", "status", "deployment/mon-app-deployment", "--timeout", "120")
    deployments = m.kubectl("get", "deployments").stdout.splitlines()
    assert deployments[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deployments[1].split()[:4] == ["mon-app-deployment", "2/2", "2", "2"]
    pods = m.kubectl("get", "pods").stdout.splitlines()[1:]
    assert len(pods) == 2 and all(re.match(r"mon-app-deployment-\w{10}-\w{5}\s+1/1\s+Running\s+0", p) for p in pods)
    svc = m.kubectl("get", "services", "mon-app-service").stdout.splitlines()[1].split()
    assert (
        svc[:2] == ["mon-app-service", "ClusterIP"] and svc[2].startswith("10.") and svc[3:5] == ["<none>", "8080/TCP"]
    )
    ing = m.kubectl("get", "ingress").stdout.splitlines()[1].split()
    assert ing[:5] == ["mon-app-http-ingress", "<none>", "*", "127.0.0.1", "80"]
    wait_for(lambda: get("http://127.0.0.1/")[0] == 200, 20, what="the ingress to answer")
    pod_ips = {p["status"]["podIP"] for p in m.pods("projet=mon-app")}
    assert len(pod_ips) == 2
    wait_for(lambda: answering_addresses() == pod_ips, 10, what="20 requests answered by both pods")

    m.kubectl("scale", "deployment/mon-app-deployment", "--replicas=3")
    m.kubectl("rollout", "status", "deployment/mon-app-deployment", "--timeout", "120")
    wait_for(lambda: len(answering_addresses(30)) == 3, 20, what="three replicas answering")

    m.run("delete", "-f", str(stack))
    wait_for(lambda: get("http://127.0.0.1/")[0] == 404, 20, what="404 once the stack is gone")

    m.run("apply", "-f", str(stack))
    m.kubectl("rollout", "status", "deployment/mon-app-deployment", "--timeout", "120")
    wait_for(lambda: get("http://127.0.0.1/")[0] == 200, 20)
    m.run("stop")
    assert get("http://127.0.0.1/")[0] == 0  # nothing listens while stopped
    m.run("start")
    wait_for(lambda: get("http://127.0.0.1/")[0] == 200, 60, what="answers after stop and start")
    wait_for(lambda: len(answering_addresses()) == 2, 30)
    m.run("delete", "-f", str(stack))


def test_hosts_paths_tls_nodeport_and_dns(ingress: Mikro) -> None:
    m = ingress
    m.run("apply", "-f", str(SHOP), "--wait", timeout=180)
    wait_for(lambda: get("http://127.0.0.1/", "shop.local")[1].startswith("frontend from"), 20)
    wait_for(lambda: get("http://127.0.0.1/api/", "shop.local")[1].startswith("backend from"), 20)
    assert get("http://127.0.0.1/", "api.shop.local")[1].startswith("backend from")
    assert get("http://127.0.0.1/", "unknown.local")[0] == 404
    assert get("http://127.0.0.1/api-docs/", "shop.local")[1].startswith("frontend")  # /api is element-wise
    wait_for(lambda: get("http://127.0.0.1:30080/api/")[1].startswith("backend from"), 10, what="the NodePort")

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", 443), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="shop.local") as tls:
            cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
            tls.sendall(b"GET / HTTP/1.1\r\nHost: shop.local\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(4096):
                answer += chunk
    assert cert.subject.rfc4514_string() == "CN=shop.local"
    assert b"200 OK" in answer and b"frontend from" in answer

    # From a Pod: a Service by every DNS form, port 8000 -> targetPort 9000.
    pod = m.pods("app=frontend", "shop")[0]["metadata"]["name"]
    for url in (
        "http://backend:8000/api/",
        "http://backend.shop:8000/api/",
        "http://backend.shop.svc:8000/api/",
        "http://backend.shop.svc.cluster.local:8000/api/",
    ):
        out = m.kubectl("exec", "-n", "shop", pod, "--", "wget", "-qO-", url).stdout
        assert out.startswith("backend from"), url
    # ...and frontend by its ClusterIP, port 80 -> named targetPort http (8080)
    ip = m.json("svc", "frontend", "-n", "shop")["spec"]["clusterIP"]
    assert m.kubectl("exec", "-n", "shop", pod, "--", "wget", "-qO-", f"http://{ip}/").stdout.startswith("frontend")
    endpoints = m.kubectl("get", "endpoints", "-n", "shop").stdout
    assert re.search(r"frontend\s+\d+\.\d+\.\d+\.\d+:8080,\d+\.\d+\.\d+\.\d+:8080", endpoints)
    m.run("delete", "namespace", "shop")


def test_missing_service_is_503_with_an_event(ingress: Mikro) -> None:
    m = ingress
    ing = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: dangling}
spec:
  rules:
  - host: dangling.local
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: nowhere, port: {number: 80}}}}
"""
    m.run("apply", "-f", "-", input=ing)
    wait_for(lambda: get("http://127.0.0.1/", "dangling.local")[0] == 503, 20)
    events = m.kubectl("get", "events").stdout
    assert "ServiceNotFound" in events and 'service "default/nowhere" not found' in events
    m.kubectl("delete", "ingress", "dangling")


def test_enable_with_a_taken_port_fails_clearly(ingress: Mikro) -> None:
    m = ingress
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        m.run("disable", "ingress")
        result = m.run("enable", "ingress", "--http-port", str(port), "--https-port", "0", check=False)
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr and "--http-port" in result.stderr
    assert "Addon ingress is enabled" in m.run("enable", "ingress").stdout


def test_unknown_addon(mikro: Mikro) -> None:
    result = mikro.run("enable", "nosuch", check=False)
    assert result.returncode == 1
    assert result.stderr == "error: unknown addon 'nosuch'; known addons: dashboard, ingress, metrics-server, dns\n"


def test_headless_service_resolves_to_pods_and_load_balancer(mikro: Mikro) -> None:
    stack = """apiVersion: apps/v1
kind: Deployment
metadata: {name: peers}
spec:
  replicas: 2
  selector: {matchLabels: {app: peers}}
  template:
    metadata: {labels: {app: peers}}
    spec:
      containers: [{name: web, image: "hello-ip:1", ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: peers}
spec:
  clusterIP: None
  selector: {app: peers}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: front}
spec:
  type: LoadBalancer
  selector: {app: peers}
  ports: [{port: 18088, targetPort: 8080}]
"""
    mikro.run("apply", "-f", "-", "--wait", input=stack, timeout=180)
    pods = mikro.pods("app=peers")
    ips = sorted(p["status"]["podIP"] for p in pods)

    def resolved() -> list[str]:
        out = mikro.kubectl("exec", pods[0]["metadata"]["name"], "--", "nslookup", "peers", check=False).stdout
        return sorted(set(re.findall(r"Address:\s+(\d+\.\d+\.\d+\.\d+)", out)) - {"127.0.0.11"})

    assert wait_for(lambda: resolved() == ips, 20, what="the headless name to resolve to both pods")
    svc = mikro.kubectl("get", "svc", "front").stdout.splitlines()[1].split()
    assert svc[1] == "LoadBalancer" and svc[3] == "127.0.0.1" and svc[4].startswith("18088:")
    wait_for(lambda: get("http://127.0.0.1:18088/")[1].startswith("Hello from peers-"), 20, what="the LoadBalancer port")
    mikro.run("delete", "-f", "-", input=stack)
