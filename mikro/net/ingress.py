"""From Ingresses, Services and Endpoints to NGINX configuration. Pure.

Routing follows the Ingress spec: Exact and Prefix (element-wise: `/foo` matches `/foo` and
`/foo/bar`, not `/foobar`), ImplementationSpecific as Prefix, the longest match wins,
`defaultBackend`, 404 when nothing matches, 503 when a backend has no ready endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources as pkg_resources
from pathlib import Path
from typing import Any

CLASS_NAME = "public"
CLASS_ALIASES = {"public", "nginx"}


@dataclass
class Problem:
    ingress: dict[str, Any]
    reason: str
    message: str


@dataclass
class Location:
    match: str
    upstream: str | None
    code: int = 503


@dataclass
class Server:
    host: str
    cert: str
    key: str
    default: bool = False
    locations: dict[str, Location] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # match -> "ns/ingress" that claimed it

    @property
    def has_root(self) -> bool:
        return "/" in self.locations


def serves(ingress: dict[str, Any]) -> bool:
    """Ingresses of mikro's class, or of no class (mikro's class is the default)."""
    cls = (ingress.get("spec") or {}).get("ingressClassName") or (
        ingress.get("metadata", {}).get("annotations") or {}
    ).get("kubernetes.io/ingress.class")
    return cls is None or cls in CLASS_ALIASES


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def matches_for(path_type: str, path: str) -> list[str]:
    if path_type == "Exact":
        return [f"= {path}"]
    path = path.rstrip("/") or "/"
    if path == "/":
        return ["/"]
    return [f"= {path}", f"^~ {path}/"]


def endpoints_for(
    service: dict[str, Any] | None, endpoints: dict[str, Any] | None, port_ref: dict[str, Any]
) -> tuple[list[str] | None, str]:
    """Ready `ip:port` addresses behind a Service port; None and why when the port is unknown."""
    if service is None:
        return None, "not found"
    ports = (service.get("spec") or {}).get("ports") or []
    if "number" in port_ref:
        port = next((p for p in ports if p.get("port") == port_ref["number"]), None)
    else:
        port = next((p for p in ports if p.get("name") == port_ref.get("name")), None)
    if port is None:
        return None, f"has no port {port_ref.get('number', port_ref.get('name'))}"
    out = []
    for subset in (endpoints or {}).get("subsets") or []:
        sports = subset.get("ports") or []
        sport = next((p for p in sports if p.get("name", "") == port.get("name", "")), None)
        if sport is None and len(sports) == 1 and len(ports) == 1:
            sport = sports[0]
        if sport is None:
            continue
        out += [f"{a['ip']}:{sport['port']}" for a in subset.get("addresses") or []]
    return sorted(out), ""


def build(
    ingresses: list[dict[str, Any]],
    services: list[dict[str, Any]],
    endpoints: list[dict[str, Any]],
    certs: dict[tuple[str, str], tuple[str, str]],
    default_cert: tuple[str, str],
    http_port: int = 80,
    https_port: int = 443,
) -> tuple[dict[str, Any], list[Problem]]:
    """The template's model, and the problems to report as events on Ingresses."""
    svc_by_key = {_key(s): s for s in services}
    ep_by_key = {_key(e): e for e in endpoints}
    problems: list[Problem] = []
    upstreams: dict[str, list[str]] = {}
    servers: dict[str, Server] = {"": Server("", *default_cert, default=True)}
    served = sorted(
        (i for i in ingresses if serves(i)), key=lambda i: (i["metadata"].get("creationTimestamp", ""), *_key(i))
    )

    def backend_target(ing: dict[str, Any], backend: dict[str, Any]) -> tuple[str | None, int]:
        ns = ing["metadata"]["namespace"]
        svc_ref = backend.get("service") or {}
        name = svc_ref.get("name", "")
        addrs, why = endpoints_for(svc_by_key.get((ns, name)), ep_by_key.get((ns, name)), svc_ref.get("port") or {})
        if addrs is None:
            problems.append(
                Problem(
                    ing,
                    "ServiceNotFound" if why == "not found" else "ServicePortNotFound",
                    f'service "{ns}/{name}" {why}: requests to it are answered with 503',
                )
            )
            return None, 503
        if not addrs:
            return None, 503
        port = svc_ref.get("port") or {}
        upstream = f"{ns}_{name}_{port.get('number', port.get('name'))}"
        upstreams[upstream] = addrs
        return upstream, 503

    for ing in served:
        spec = ing.get("spec") or {}
        owner = "/".join(_key(ing))
        for tls in spec.get("tls") or []:
            pair = certs.get((ing["metadata"]["namespace"], tls.get("secretName", "")))
            if pair is None:
                problems.append(
                    Problem(
                        ing,
                        "TLSSecretInvalid",
                        f'TLS secret "{tls.get("secretName")}" is missing '
                        "or not a valid key pair: its hosts use the default certificate",
                    )
                )
            for host in tls.get("hosts") or []:
                server = servers.setdefault(host, Server(host, *default_cert))
                if pair is not None:
                    server.cert, server.key = pair
        claims: list[tuple[int, str, str, dict[str, Any]]] = []
        for rule in spec.get("rules") or []:
            host = rule.get("host") or ""
            servers.setdefault(host, Server(host, *default_cert))
            for p in (rule.get("http") or {}).get("paths") or []:
                ptype = p.get("pathType", "Prefix")
                path = p.get("path") or "/"
                for match in matches_for("Prefix" if ptype == "ImplementationSpecific" else ptype, path):
                    claims.append((0 if ptype == "Exact" else 1, host, match, p.get("backend") or {}))
        for _, host, match, backend in sorted(claims, key=lambda c: c[0]):
            server = servers[host]
            if match in server.locations:
                if server.owners[match] != owner:
                    problems.append(
                        Problem(
                            ing,
                            "Conflict",
                            f'host "{host or "*"}" path "{match.split()[-1]}" is '
                            f"already served by ingress {server.owners[match]}",
                        )
                    )
                continue
            upstream, code = backend_target(ing, backend)
            server.locations[match] = Location(match, upstream, code)
            server.owners[match] = owner
        default = spec.get("defaultBackend")
        if default:
            hosts = {r.get("host") or "" for r in spec.get("rules") or []} | {""}
            for host in hosts:
                server = servers[host] if host in servers else servers.setdefault(host, Server(host, *default_cert))
                if "/" not in server.locations:
                    upstream, code = backend_target(ing, default)
                    server.locations["/"] = Location("/", upstream, code)
                    server.owners["/"] = owner
    ordered = [servers[""]] + [servers[h] for h in sorted(servers) if h]
    model = {
        "http_port": http_port,
        "https_port": https_port,
        "upstreams": [{"name": n, "endpoints": eps} for n, eps in sorted(upstreams.items())],
        "servers": [
            {
                "host": s.host,
                "cert": s.cert,
                "key": s.key,
                "default": s.default,
                "has_root": s.has_root,
                "locations": [vars(loc) for loc in sorted(s.locations.values(), key=lambda x: x.match)],
            }
            for s in ordered
        ],
    }
    return model, problems


@cache
def _environment() -> Any:
    import jinja2  # loaded on the first rendering, not at the control plane's start

    # NGINX configuration, not HTML: nothing to escape.
    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def addons_root() -> Path:
    """`addons/` of the source tree this module runs from, else the package data `mikro.addons`.

    The source tree comes first so that a checkout (or a second worktree) never renders
    another checkout's templates through an editable install."""
    source = Path(__file__).resolve().parents[2] / "addons"
    if (source / "ingress" / "addon.yaml").is_file():
        return source
    return Path(str(pkg_resources.files("mikro.addons")))


def render_ingress(model: dict[str, Any]) -> str:
    text = (addons_root() / "ingress" / "nginx.conf.j2").read_text()
    return _environment().from_string(text).render(**model)


def render_service_proxy(namespace: str, name: str, ports: list[dict[str, Any]]) -> str:
    text = (Path(__file__).parent / "templates" / "service-proxy.conf.j2").read_text()
    return _environment().from_string(text).render(namespace=namespace, name=name, ports=ports)
