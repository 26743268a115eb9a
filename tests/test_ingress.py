"""Ingress routing rendered to NGINX configuration (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from mikro.net.ingress import (
    Unsafe,
    build,
    matches_for,
    nginx_comment,
    nginx_quote,
    render_ingress,
    render_service_proxy,
    serves,
)

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
    assert 'server "10.0.0.2:8080"' in text and "keepalive 32;" in text
    assert 'proxy_pass "http://default_web_8080";' in text


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
    assert "listen 80;" in text and 'server "10.0.0.2:8080"' in text
    assert "listen 53 udp;" in text and "server 127.0.0.1:1 down;" in text


# -- hostile values (issue 11, item 2) ---------------------------------------------------------

INJECTED_PATH = '/x { return 200 "pwn"; } location /leak/ { alias /var/lib/mikro/; autoindex on; } location /y'


def test_inspection_denies_the_one_bad_ingress_and_serves_the_others() -> None:
    good = ing("good", [{"http": {"paths": [path("/", "web", 80)]}}])
    hostile = [
        ing("p", [{"http": {"paths": [path(INJECTED_PATH, "web", 80, "Exact")]}}]),
        ing("i", [{"http": {"paths": [path("/a b", "web", 80, "ImplementationSpecific")]}}]),
        ing("h", [{"host": "evil.local; location / { return 200; }", "http": {"paths": [path("/", "web", 80)]}}]),
        ing("n", [{"host": "web.local\n", "http": {"paths": [path("/", "web", 80)]}}]),
        ing(
            "t",
            [],
            defaultBackend={"service": {"name": "web", "port": {"number": 80}}},
            tls=[{"hosts": ["evil.local; location /"], "secretName": "../x"}],
        ),
        ing("s", [{"http": {"paths": [path("/s", "Bad_Name;", 80)]}}]),
        ing("o", [{"http": {"paths": [path("/o", "web", "a b{")]}}]),
    ]
    model, problems = build([good, *hostile], [svc("web", [{"port": 80}])], [ep("web", ["10.0.0.2"], 80)], {}, CERT)
    assert sorted(p.ingress["metadata"]["name"] for p in problems if p.reason == "Rejected") == sorted(
        i["metadata"]["name"] for i in hostile
    )
    assert locations(model)["/"]["upstream"] == "default_web_80"
    assert [s["host"] for s in model["servers"]] == [""]
    text = render_ingress(model)
    for needle in ("pwn", "evil", "autoindex", "Bad_Name", "a b"):
        assert needle not in text


def test_endpoints_to_special_or_malformed_addresses_are_never_rendered() -> None:
    bad = {
        "metadata": {"name": "ext", "namespace": "default"},
        "subsets": [
            {
                "addresses": [
                    {"ip": "127.0.0.1"},
                    {"ip": "169.254.169.254"},
                    {"ip": "10.0.0.1:80 max_fails=0; } server { listen 8081"},
                    {"ip": "10.0.0.7"},
                ],
                "ports": [{"port": 80}],
            }
        ],
    }
    model, _ = build(
        [ing("x", [{"http": {"paths": [path("/", "ext", 80)]}}])], [svc("ext", [{"port": 80}])], [bad], {}, CERT
    )
    assert model["upstreams"] == [{"name": "default_ext_80", "endpoints": ["10.0.0.7:80"]}]
    text = render_service_proxy("default", "ext", [{"port": 80, "protocol": "TCP", "endpoints": ["10.0.0.7:80"]}])
    assert 'server "10.0.0.7:80" max_fails=0;' in text


def test_quoting_helper_keeps_every_value_one_token() -> None:
    assert nginx_quote('/a b; } location /x { "') == '"/a b; } location /x { \\""'
    assert nginx_quote("a\\") == '"a\\\\"'
    for bad in ("a\nb", "a\rb", "a\x00", "\x7f"):
        with pytest.raises(Unsafe):
            nginx_quote(bad)
    assert nginx_comment("ns/na\nme } {") == "ns/na?me } {"


def test_a_value_that_slipped_past_inspection_is_still_one_token() -> None:
    model, _ = build(
        [ing("a", [{"http": {"paths": [path("/a", "web", 80)]}}])], [svc("web", [{"port": 80}])], [], {}, CERT
    )
    model["servers"][0]["locations"][0]["path"] = "/x; } server { listen 81; } location /y {"
    text = render_ingress(model)
    assert 'location = "/x; } server { listen 81; } location /y {" {' in text
    model["servers"][0]["host"] = "a\nb"
    with pytest.raises(Unsafe):
        render_ingress(model)
    with pytest.raises(Unsafe):
        render_service_proxy("default", "web", [{"port": "80; } server {", "protocol": "TCP", "endpoints": []}])
