"""Ingress routing rendered to NGINX configuration (pure)."""

from __future__ import annotations

from typing import Any

from mikro.net.ingress import build, matches_for, render_ingress, render_service_proxy, serves

CERT = ("/etc/ssl/mikro/default.crt", "/etc/ssl/mikro/default.key")


def svc(name: str, ports: list[dict[str, Any]], ns: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"ports": ports}}


def ep(name: str, ips: list[str], port: int, port_name: str = "", ns: str = "default") -> dict[str, Any]:
    p = {"port": port, "protocol": "TCP", **({"name": port_name} if port_name else {})}
    return {
        "metadata": {"name": name, "namespace": ns},
        "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [p]}] if ips else [],
    }


def ing(name: str, rules: list[dict[str, Any]], created: str = "2026-01-01T00:00:00Z", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created, "uid": name},
        "spec": {"rules": rules, **spec},
    }


def path(p: str, service: str, port: Any, path_type: str = "Prefix") -> dict[str, Any]:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"path": p, "pathType": path_type, "backend": {"service": {"name": service, "port": ref}}}


def locations(model: dict[str, Any], host: str = "") -> dict[str, Any]:
    server = next(s for s in model["servers"] if s["host"] == host)
    return {loc["match"]: loc for loc in server["locations"]}


def test_prefix_is_element_wise_and_exact_is_exact() -> None:
    assert matches_for("Prefix", "/foo") == ["= /foo", "^~ /foo/"]
    assert matches_for("Prefix", "/foo/") == ["= /foo", "^~ /foo/"]
    assert matches_for("Prefix", "/") == ["/"]
    assert matches_for("Exact", "/foo") == ["= /foo"]


def test_seed_stack_routes_to_endpoints() -> None:
    model, problems = build(
        [ing("web", [{"http": {"paths": [path("/", "web", 8080)]}}])],
        [svc("web", [{"port": 8080, "targetPort": 8080}])],
        [ep("web", ["10.0.0.2", "10.0.0.3"], 8080)],
        {},
        CERT,
    )
    assert problems == []
    assert model["upstreams"] == [{"name": "default_web_8080", "endpoints": ["10.0.0.2:8080", "10.0.0.3:8080"]}]
    assert locations(model)["/"]["upstream"] == "default_web_8080"
    text = render_ingress(model)
    assert "server 10.0.0.2:8080" in text and "keepalive 32;" in text and "proxy_pass http://default_web_8080;" in text


def test_hosts_paths_named_ports_and_missing_backends() -> None:
    rules = [
        {
            "host": "app.local",
            "http": {"paths": [path("/", "front", 80), path("/api", "back", "http"), path("/gone", "missing", 80)]},
        }
    ]
    model, problems = build(
        [ing("app", rules)],
        [svc("front", [{"port": 80}]), svc("back", [{"port": 8000, "name": "http"}])],
        [ep("front", ["10.0.0.2"], 8080), ep("back", [], 9000, "http")],
        {},
        CERT,
    )
    locs = locations(model, "app.local")
    assert locs["/"]["upstream"] == "default_front_80"
    assert locs["= /api"]["upstream"] is None and locs["= /api"]["code"] == 503  # no ready endpoint
    assert locs["^~ /gone/"]["code"] == 503
    assert [(p.reason, p.ingress["metadata"]["name"]) for p in problems] == [("ServiceNotFound", "app")] * 2
    assert locations(model, "") == {}  # nothing for other hosts: 404


def test_conflicting_ingresses_first_created_wins() -> None:
    a = ing("a", [{"http": {"paths": [path("/", "one", 80)]}}], created="2026-01-01T00:00:00Z")
    b = ing("b", [{"http": {"paths": [path("/", "two", 80)]}}], created="2026-01-02T00:00:00Z")
    services = [svc("one", [{"port": 80}]), svc("two", [{"port": 80}])]
    endpoints = [ep("one", ["10.0.0.1"], 80), ep("two", ["10.0.0.2"], 80)]
    model, problems = build([b, a], services, endpoints, {}, CERT)
    assert locations(model)["/"]["upstream"] == "default_one_80"
    assert [(p.reason, p.ingress["metadata"]["name"]) for p in problems] == [("Conflict", "b")]


def test_default_backend_and_tls() -> None:
    i = ing(
        "tls",
        [{"host": "secure.local", "http": {"paths": [path("/app", "web", 80)]}}],
        defaultBackend={"service": {"name": "web", "port": {"number": 80}}},
        tls=[{"hosts": ["secure.local"], "secretName": "cert"}, {"hosts": ["other.local"], "secretName": "bad"}],
    )
    certs = {("default", "cert"): ("/etc/mikro/certs/default_cert.crt", "/etc/mikro/certs/default_cert.key")}
    model, problems = build([i], [svc("web", [{"port": 80}])], [ep("web", ["10.0.0.9"], 80)], certs, CERT)
    secure = next(s for s in model["servers"] if s["host"] == "secure.local")
    other = next(s for s in model["servers"] if s["host"] == "other.local")
    assert secure["cert"].endswith("default_cert.crt") and other["cert"] == CERT[0]
    assert [p.reason for p in problems] == ["TLSSecretInvalid"]
    assert locations(model)["/"]["upstream"] == "default_web_80"  # defaultBackend on the catch-all server
    assert "/" in locations(model, "secure.local")


def test_ingress_class() -> None:
    assert serves(ing("a", []))
    assert serves(ing("a", [], ingressClassName="public")) and serves(ing("a", [], ingressClassName="nginx"))
    assert not serves(ing("a", [], ingressClassName="traefik"))


def test_service_proxy_config() -> None:
    text = render_service_proxy(
        "default",
        "web",
        [
            {"port": 80, "protocol": "TCP", "endpoints": ["10.0.0.2:8080"]},
            {"port": 53, "protocol": "UDP", "endpoints": []},
        ],
    )
    assert "listen 80;" in text and "server 10.0.0.2:8080" in text
    assert "listen 53 udp;" in text and "server 127.0.0.1:1 down;" in text
