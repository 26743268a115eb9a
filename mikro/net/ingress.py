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

from mikro.api import checks

CLASS_NAME = "public"
CLASS_ALIASES = {"public", "nginx"}


@dataclass
class Problem:
    ingress: dict[str, Any]
    reason: str
    message: str


@dataclass
class Location:
    match: str  # "= /path", "^~ /path/" or "/": the key that orders and de-duplicates
    upstream: str | None
    code: int = 503

    @property
    def modifier(self) -> str:
        return self.match.split(" ", 1)[0] if " " in self.match else ""

    @property
    def path(self) -> str:
        return self.match.split(" ", 1)[1] if " " in self.match else self.match


class Unsafe(ValueError):
    """A value that must never reach an NGINX configuration."""


def nginx_quote(value: object) -> str:
    """One NGINX token, whatever the value: double-quoted, with `\\` and `"` escaped, so that
    no `;`, `{`, `}` or space inside it can end the directive (ingress-nginx's lesson from
    CVE-2021-25742/25745, CVE-2023-5043/5044, CVE-2025-1974). Control characters are refused:
    NGINX would keep a newline inside a quoted string, and no valid value holds one."""
    text = str(value)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise Unsafe(f"control character in {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nginx_comment(value: object) -> str:
    """Text for a `#` comment: one line, nothing outside printable ASCII."""
    return "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in str(value))


def inspect(ingress: dict[str, Any]) -> list[str]:
    """Allow-list inspection of every user string of an Ingress before it is rendered: the
    values the API validates, checked again here, since objects stored before a rule existed
    (or written around the API) must not reach NGINX either. Empty when the Ingress is safe."""
    found: list[str] = []
    meta = ingress.get("metadata") or {}
    spec = ingress.get("spec") or {}

    def check(field: str, value: Any, messages: list[str]) -> None:
        found.extend(f"{field}: Invalid value: {value!r}: {m}" for m in messages)

    def backend(field: str, ref: Any) -> None:
        service = (ref or {}).get("service") if isinstance(ref, dict) else None
        if not isinstance(service, dict):
            return
        check(f"{field}.service.name", service.get("name"), checks.dns1035_label(service.get("name")))
        port = service.get("port") or {}
        if not isinstance(port, dict):
            found.append(f"{field}.service.port: must be a mapping")
        elif "number" in port:
            number = port["number"]
            if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
                found.append(f"{field}.service.port.number: Invalid value: {number!r}")
        else:
            check(f"{field}.service.port.name", port.get("name"), checks.port_name(port.get("name")))

    check("metadata.namespace", meta.get("namespace"), checks.dns1123_label(meta.get("namespace")))
    check("metadata.name", meta.get("name"), checks.dns1123_subdomain(meta.get("name")))
    if spec.get("defaultBackend"):
        backend("spec.defaultBackend", spec["defaultBackend"])
    for i, rule in enumerate(spec.get("rules") or []):
        if not isinstance(rule, dict):
            found.append(f"spec.rules[{i}]: must be a mapping")
            continue
        if rule.get("host"):
            check(f"spec.rules[{i}].host", rule["host"], checks.ingress_host(rule["host"]))
        for j, item in enumerate((rule.get("http") or {}).get("paths") or []):
            field = f"spec.rules[{i}].http.paths[{j}]"
            if not isinstance(item, dict):
                found.append(f"{field}: must be a mapping")
                continue
            ptype = item.get("pathType", "Prefix")
            value = item.get("path") or "/"
            # mikro reads ImplementationSpecific as Prefix: the same characters apply.
            messages = checks.ingress_path(value, "Prefix" if ptype == "ImplementationSpecific" else ptype)
            if ptype not in ("Exact", "Prefix", "ImplementationSpecific"):
                messages.append("unsupported pathType")
            check(f"{field}.path", value, messages)
            backend(f"{field}.backend", item.get("backend"))
    for i, tls in enumerate(spec.get("tls") or []):
        if not isinstance(tls, dict):
            found.append(f"spec.tls[{i}]: must be a mapping")
            continue
        for j, host in enumerate(tls.get("hosts") or []):
            check(f"spec.tls[{i}].hosts[{j}]", host, [m for m in checks.ingress_host(host) if "not an IP" not in m])
        if tls.get("secretName"):
            check(f"spec.tls[{i}].secretName", tls["secretName"], checks.dns1123_subdomain(tls["secretName"]))
    return found


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
        if sport is None or not _valid_port(sport.get("port")):
            continue
        # Only addresses Kubernetes accepts (an Endpoints object stored before the API checked
        # them must not send traffic to the host's loopback or the metadata address either).
        out += [
            f"{a['ip']}:{sport['port']}"
            for a in subset.get("addresses") or []
            if isinstance(a, dict) and not checks.endpoint_ip(a.get("ip"))
        ]
    return sorted(out), ""


def _valid_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


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
    referenced: set[str] = set()  # "namespace/name" of each Service a served backend names
    servers: dict[str, Server] = {"": Server("", *default_cert, default=True)}
    served = []
    for ing in sorted(
        (i for i in ingresses if serves(i)), key=lambda i: (i["metadata"].get("creationTimestamp", ""), *_key(i))
    ):
        found = inspect(ing)
        if found:
            problems.append(
                Problem(
                    ing,
                    "Rejected",
                    "the ingress is not served: " + "; ".join(found[:3]) + ("; ..." if len(found) > 3 else ""),
                )
            )
        else:
            served.append(ing)

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
        referenced.add(f"{ns}/{name}")
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
        "services": sorted(referenced),
        "servers": [
            {
                "host": s.host,
                "cert": s.cert,
                "key": s.key,
                "default": s.default,
                "has_root": s.has_root,
                "locations": [
                    {**vars(loc), "modifier": loc.modifier, "path": loc.path}
                    for loc in sorted(s.locations.values(), key=lambda x: x.match)
                ],
            }
            for s in ordered
        ],
    }
    return model, problems


@cache
def _environment() -> Any:
    import jinja2  # loaded on the first rendering, not at the control plane's start

    # NGINX configuration, not HTML: every user string goes through `q` (one quoted token) or
    # `comment`, and the tests render hostile values to keep it so.
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["q"] = nginx_quote
    env.filters["comment"] = nginx_comment
    env.filters["num"] = _int_only
    return env


def _int_only(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unsafe(f"not an integer: {value!r}")
    return value


def addons_root() -> Path:
    """`addons/` of the source tree this module runs from, else the package data `mikro.addons`.

    The source tree comes first so that a checkout (or a second worktree) never renders
    another checkout's templates through an editable install."""
    source = Path(__file__).resolve().parents[2] / "addons"
    if (source / "ingress" / "addon.yaml").is_file():
        return source
    return Path(str(pkg_resources.files("mikro.addons")))


@cache
def _compiled(text: str) -> Any:
    return _environment().from_string(text)


def render_ingress(model: dict[str, Any]) -> str:
    text = (addons_root() / "ingress" / "nginx.conf.j2").read_text()
    return _compiled(text).render(**model)


def render_service_proxy(namespace: str, name: str, ports: list[dict[str, Any]]) -> str:
    text = (Path(__file__).parent / "templates" / "service-proxy.conf.j2").read_text()
    return _compiled(text).render(namespace=namespace, name=name, ports=ports)
