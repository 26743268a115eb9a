"""The kube-apiserver part: Kubernetes REST paths over HTTP on 127.0.0.1, bearer token.

This module only speaks HTTP; the verbs live in `registry`, the objects in `store`.
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from mikro import __version__
from mikro.api import (
    access,
    apply,
    auth,
    bodies,
    crds,
    eviction,
    fieldvalidation,
    httpfast,
    kubeproto,
    listing,
    lists,
    logfilter,
    metrics,
    openapi,
    openapi_pb,
    resources,
    selectors,
    streaming,
    tablecache,
    tokens,
    watchcache,
    webhooks,
)
from mikro.api.connections import IDLE_TIMEOUT, BoundedTLSServer
from mikro.api.registry import Registry, scale_of
from mikro.api.resources import Resource
from mikro.api.store import Store
from mikro.cli import printers
from mikro.errors import ApiError

log = logging.getLogger("mikro.apiserver")

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "mikro-" + __version__,
    "gitTreeState": "clean",
    "buildDate": "2026-11-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}
MAX_BODY = bodies.MAX_REQUEST_BYTES
# How often a watch that allows bookmarks is told how far it has come (kube-apiserver: ~1 min).
BOOKMARK_SECONDS = 10.0
SHUTDOWN_POLL = 0.1  # seconds: how soon the listening loop sees a shutdown
# An answer this big is written apart from its headers: joined, it would be copied twice more
# (a 10 000 row Table is 5 MB).
SEPARATE_BODY = 256 * 1024
# Errors of a connection whose client went away: the end of a conversation, not a fault.
GONE = (ConnectionError, ssl.SSLError, TimeoutError)
PUBLIC_PATHS = {"/version", "/healthz", "/readyz", "/livez"}


class PodRuntimeHooks(Protocol):
    def logs(
        self,
        pod: dict[str, Any],
        container: str | None,
        follow: bool,
        previous: bool,
        tail: int | None,
        timestamps: bool,
    ) -> Iterator[bytes]: ...

    def exec_stream(
        self, pod: dict[str, Any], container: str | None, command: list[str], stdin: bool, tty: bool
    ) -> streaming.ProcessStream: ...

    def attach_stream(
        self, pod: dict[str, Any], container: str | None, stdin: bool, tty: bool
    ) -> streaming.ProcessStream: ...


class ApiHTTPServer(BoundedTLSServer):
    def __init__(
        self, address: tuple[str, int], registry: Registry, token: str, runtime: PodRuntimeHooks | None
    ) -> None:
        super().__init__(address, Handler)
        self.registry = registry
        self.token = token
        self.issuer = tokens.Issuer.ephemeral()  # the control plane sets the kept key (access.py)
        self.runtime = runtime
        self.metrics: metrics.MetricsSource | None = None  # the metrics-server addon, when the control plane has it
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (kubectl does, after a watch) is not an error worth a traceback.
        exc = sys.exc_info()[1]
        if not isinstance(exc, GONE):
            log.exception("error serving %s", client_address)


# Kinds `kubectl get all` lists, as Kubernetes' "all" category has them.
ALL_CATEGORY = {
    "Pod",
    "Service",
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
}


def discovery_resources(group: str, version: str) -> list[dict[str, Any]]:
    out = []
    for r in resources.every():
        if r.group != group or r.version != version:
            continue
        out.append(
            {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(r.verbs),
                "shortNames": list(r.short_names),
                **({"categories": ["all"]} if r.kind in ALL_CATEGORY else {}),
                **({"categories": list(r.custom.categories)} if r.custom and r.custom.categories else {}),
                **({"storageVersionHash": ""} if r.custom else {}),
            }
        )
        subresources = {
            "Pod": ["status", "log", *streaming.SUBRESOURCES],
            "Deployment": ["status", "scale"],
            "ReplicaSet": ["status", "scale"],
            "ReplicationController": ["status", "scale"],
            "StatefulSet": ["status", "scale"],
            "Service": ["status"],
            "Ingress": ["status"],
            "Namespace": ["status"],
        }
        if r.custom is not None:
            subresources[r.kind] = [s for s in ("status", "scale") if getattr(r.custom, s)]
        for sub in subresources.get(r.kind, []):
            kind = "Scale" if sub == "scale" else r.kind
            out.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": kind,
                    "verbs": ["create", "get"] if sub in streaming.SUBRESOURCES else ["get", "patch", "update"],
                }
            )
    if group == "" and version == "v1":
        out.append(eviction.DISCOVERY)
        out.append({"name": "bindings", "singularName": "", "namespaced": True, "kind": "Binding", "verbs": ["create"]})
    return out


class Handler(httpfast.FastParsing, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the client's delayed
    # ACK would hold every response back by about 40 ms.
    disable_nagle_algorithm = True
    server: ApiHTTPServer
    server_version = "mikro-apiserver"
    _watch_protobuf = False  # set per watch request
    # Read and write timeout of the socket: an idle keep-alive connection, or a client that
    # stops reading a watch, is closed after this long.
    timeout = IDLE_TIMEOUT
    # The request body not read yet: its length, "chunked", or None once read or drained.
    _unread: int | str | None = None
    # The client sent `Expect: 100-continue` and waits for a 100 before sending its body.
    _expects_continue = False
    # The body read was JSON with no key given twice (fieldValidation need not look).
    _no_duplicates = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    # -- plumbing --------------------------------------------------------------------------

    def _send_json(self, code: int, body: Any) -> None:
        # JSON, or protobuf for the built-in kinds when the client prefers it (Go clients do).
        ctype, data = kubeproto.render(body, self.headers.get("Accept"))
        self._send_bytes(code, ctype, data)

    def _send_written(self, code: int, obj: dict[str, Any]) -> None:
        """The answer to a write: the object as the store has just stored it (its JSON text as
        is, when this request's write stored this very object)."""
        text = self.server.registry.store.committed_json(obj)
        ctype, data = kubeproto.render(obj, self.headers.get("Accept"), text)
        self._send_bytes(code, ctype, data)

    def _send_bytes(self, code: int, ctype: str, data: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for warning in fieldvalidation.warnings():
            self.send_header("Warning", '299 - "' + warning.replace("\\", "\\\\").replace('"', '\\"') + '"')
        if self.close_connection:
            self.send_header("Connection", "close")
        if hasattr(self, "_headers_buffer") and len(data) < SEPARATE_BODY:  # (HTTP/0.9: no headers)
            # Headers and body in one write: one TLS record and one syscall, not two.
            self._headers_buffer.append(b"\r\n" + data)
            self.flush_headers()
        else:
            self.end_headers()
            self.wfile.write(data)

    def _send_error(self, err: ApiError) -> None:
        self._send_json(err.code, err.status())

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _framing(self) -> int | str | None:
        """How the request's body is framed, refused when it cannot be read safely (the
        connection is closed then: its stream is no longer in step)."""
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return "chunked"
            length = bodies.parse_content_length(self.headers.get_all("Content-Length") or [])
        except ApiError:
            self.close_connection = True
            raise
        if length is not None and length > MAX_BODY:
            self.close_connection = True
            raise bodies.too_large()
        return length or None

    def handle_expect_100(self) -> bool:
        # The 100 goes out only when the body is about to be read (as Go's server does), so a
        # request refused before that (401, 413, 404) never invites its body.
        self._expects_continue = True
        return True

    def _read_raw(self) -> bytes:
        pending, self._unread = self._unread, None
        if pending is None:
            return b""
        if self._expects_continue:
            self._expects_continue = False
            self.send_response_only(100)
            self.end_headers()
            self.wfile.flush()
        if pending != "chunked":
            return self.rfile.read(int(pending))
        data = bytearray()
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "invalid chunked request body") from None
            if size < 0 or len(data) + size > MAX_BODY:
                self.close_connection = True
                raise bodies.too_large()
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline(3)

    def _finish_body(self, authorized: bool) -> None:
        """Never leave a body in the stream: the next request on this keep-alive connection
        would be read from the middle of it. Drain it for a client with a token; close the
        connection of one without (its body is never read)."""
        if self._unread is None:
            return
        if not authorized or self._expects_continue:
            # (A client waiting for a 100 may or may not send its body after all.)
            self._unread = None
            self.close_connection = True
            return
        try:
            self._read_raw()
        except ApiError:
            self.close_connection = True

    def _body(self) -> Any:
        raw = self._read_raw()
        self.raw_body = raw  # for the duplicate-field check of fieldValidation
        self._no_duplicates = False
        if raw and kubeproto.is_protobuf(self.headers.get("Content-Type")):
            return kubeproto.read_body(raw)
        obj, duplicates = bodies.decode_noting_duplicates(raw)
        self._no_duplicates = not duplicates
        return obj

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        user = access.authenticate(header, self.server.token, self.server.issuer, self.server.registry.store)
        self.user = user or access.ADMIN
        return user is not None

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        token = fieldvalidation.start_request()
        user = webhooks.USER.set(None)
        try:
            self._dispatch_request(method)
        finally:
            webhooks.USER.reset(user)
            fieldvalidation.end_request(token)

    def _dispatch_request(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        authorized = False
        self._unread = None
        try:
            self._unread = self._framing()
            if self._unread is None:
                self._expects_continue = False
            # Like Kubernetes' system:public-info-viewer: health and version need no token.
            authorized = self._authorized()
            if url.path.rstrip("/") not in PUBLIC_PATHS and not authorized:
                raise ApiError(401, "Unauthorized")
            if authorized:
                self.user = access.impersonate(self.user, self.headers)
                access.authorize(self.user, method, url.path, query, self.server.registry.store)
                webhooks.USER.set({"username": self.user.name, "uid": self.user.uid, "groups": list(self.user.groups)})
            if method == "POST" and auth.review_path(url.path):
                self._review(auth.review_path(url.path) or ("", ""))
            elif url.path.startswith(metrics.PREFIX) and method == "GET":
                self._send_json(200, metrics.handle(self.server.metrics, url.path, query))
            elif not self._discovery(url.path):
                self._resource(method, url.path, query)
            self._finish_body(authorized)
        except ApiError as err:
            self._answer_error(err, authorized)
        except GONE:
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - the server must answer, not die
            log.exception("internal error on %s %s", method, self.path)
            self._answer_error(ApiError(500, f"internal error: {exc}"), authorized)

    def _answer_error(self, err: ApiError, authorized: bool) -> None:
        try:
            self._finish_body(authorized)
            self._send_error(err)
        except GONE:
            self.close_connection = True

    # -- discovery -------------------------------------------------------------------------

    def _discovery(self, path: str) -> bool:
        path = path.rstrip("/") or "/"
        if path in ("/healthz", "/readyz", "/livez"):
            data = b"ok"
            self.send_response(200 if self.server.ready.is_set() or path == "/livez" else 503)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        if path == "/version":
            self._send_json(200, KUBE_VERSION)
        elif path == "/api":
            host = f"127.0.0.1:{self.server.server_address[1]}"
            self._send_json(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
                },
            )
        elif path == "/apis":
            groups = []
            for group, versions in resources.groups().items():
                gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
                groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
            groups += auth.group_list_entries()
            if self.server.metrics is not None and self.server.metrics.serving():
                groups.append(metrics.api_group())
            self._send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        elif auth.discovery(path) is not None:
            self._send_json(200, auth.discovery(path))
        elif path == "/api/v1":
            self._send_json(
                200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": discovery_resources("", "v1")}
            )
        elif path.startswith("/apis/") and path.count("/") in (2, 3):
            parts = path.split("/")[2:]
            group = parts[0]
            versions = resources.groups().get(group)
            if not versions:
                raise ApiError(404, f"the server could not find the requested resource (group {group})")
            if len(parts) == 1:
                gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
                self._send_json(
                    200,
                    {
                        "kind": "APIGroup",
                        "apiVersion": "v1",
                        "name": group,
                        "versions": gvs,
                        "preferredVersion": gvs[0],
                    },
                )
            elif parts[1] in versions:
                self._send_json(
                    200,
                    {
                        "kind": "APIResourceList",
                        "apiVersion": "v1",
                        "groupVersion": f"{group}/{parts[1]}",
                        "resources": discovery_resources(group, parts[1]),
                    },
                )
            else:
                raise ApiError(404, "the server could not find the requested resource")
        elif path.startswith("/openapi/"):
            self._openapi(path)
        else:
            return False
        return True

    def _review(self, key: tuple[str, str]) -> None:
        if "protobuf" in self.headers.get("Content-Type", ""):
            body: Any = kubeproto.read_body(self._read_raw())  # Go clients send reviews as protobuf
        else:
            body = self._body()
        store = self.server.registry.store
        self._send_json(
            201,
            auth.review(
                key,
                body,
                self.user.info(),
                lambda kind, spec: access.decide(kind, spec, self.user, store),
                lambda ns: access.rules_status(self.user, ns, store),
            ),
        )

    def _openapi(self, path: str) -> None:
        document = openapi.lookup(path)
        if document is None:
            raise ApiError(404, "the server could not find the requested resource")
        accept = self.headers.get("Accept") or "*/*"
        content_type = "application/json"
        if not any(t in accept for t in ("json", "*/*")):
            if path.rstrip("/") != "/openapi/v2" or "protobuf" not in accept:
                raise ApiError(406, "the OpenAPI document is served as JSON", "NotAcceptable")
            document, content_type = openapi.v2_protobuf(), openapi_pb.CONTENT_TYPE
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(document)))
        if "hash=" in (urlsplit(self.path).query or ""):
            self.send_header("Cache-Control", "public, immutable")
        self.end_headers()
        self.wfile.write(document)

    # -- resources -------------------------------------------------------------------------

    def _route(self, path: str) -> tuple[Resource, str | None, str | None, str | None, bool]:
        """Resource, namespace, name, subresource and whether the legacy /watch/ prefix was used."""
        # Segments are percent-decoded one by one, so every stored name is addressable and an
        # encoded "/" stays inside its segment.
        try:
            parts = [unquote(p, errors="strict") for p in path.split("/") if p]
        except UnicodeDecodeError:
            raise ApiError(400, f"the path {path!r} is not percent-encoded UTF-8") from None
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        watch = False
        if rest[:1] == ["watch"]:
            watch, rest = True, rest[1:]
        ns: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest:
            raise ApiError(404, "the server could not find the requested resource")
        res = resources.by_group_version_plural(group, version, rest[0])
        if res is None:
            raise ApiError(404, f"the server could not find the requested resource ({rest[0]})")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if not res.namespaced:
            ns = None
        elif name is not None and ns is None:
            raise ApiError(404, "the server could not find the requested resource")
        return res, ns, name, sub, watch

    def _duplicates(self, res: Resource, query: dict[str, str]) -> None:
        """A field given twice in a JSON body: refused under Strict, a warning under Warn."""
        mode = fieldvalidation.directive(query)
        if mode == "Ignore" or self._no_duplicates or not getattr(self, "raw_body", b"").lstrip().startswith(b"{"):
            return
        found = fieldvalidation.find_duplicates(self.raw_body)
        if found and mode == "Strict":
            raise ApiError(
                400,
                f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                + fieldvalidation.decoding_error([], found),
            )
        for path in found:
            fieldvalidation.warn(f'duplicate field "{path}"')

    def _manager(self, query: dict[str, str]) -> str:
        """The field manager of a write: the parameter, else the client's name from its
        User-Agent, as kube-apiserver derives it."""
        given = query.get("fieldManager")
        if given:
            return apply.check_manager(given)
        agent = (self.headers.get("User-Agent") or "").split("/", 1)[0].strip()
        return agent[: apply.MAX_MANAGER] or "unknown"

    def _wants_table(self) -> bool:
        accept = self.headers.get("Accept", "")
        return "as=Table" in accept

    def _resource(self, method: str, path: str, query: dict[str, str]) -> None:
        reg = self.server.registry
        res, ns, name, sub, legacy_watch = self._route(path)
        dry_run = query.get("dryRun") == "All"
        if method == "GET" and (legacy_watch or query.get("watch") in ("true", "1")):
            self._watch(res, ns, name, query)
            return
        if method == "GET" and name is None:
            self._list(res, ns, query)
            return
        if method == "POST" and name is None:
            body = bodies.require_object(self._body(), res.kind)
            self._duplicates(res, query)
            obj = self._decoded(
                res,
                lambda: reg.create(
                    res,
                    ns or "",
                    body,
                    dry_run=dry_run,
                    field_validation=fieldvalidation.directive(query),
                    assume_namespace=query.get("mikroAssumeNamespace") == "true",
                    manager=self._manager(query),
                ),
            )
            self._send_written(201, obj)
            return
        if name is None:
            raise ApiError(405, f"{method} is not allowed on a collection of {res.plural}")
        if sub == "log" and res.kind == "Pod":
            self._pod_stream(sub, ns or "", name, query)
            return
        if sub in streaming.SUBRESOURCES and res.kind == "Pod":
            self._pod_upgrade(sub, ns or "", name)
            return
        if sub == "eviction" and res.kind == "Pod" and method == "POST":
            self._evict(ns or "", name, dry_run)
            return
        if sub == "token" and res.kind == "ServiceAccount" and method == "POST":
            body = self._body()
            self._send_json(201, access.token_request(self.server.issuer, reg.store, ns or "", name, body))
            return
        if sub not in (None, "status", "scale") or (res.custom and sub and not getattr(res.custom, sub)):
            raise ApiError(404, f"the server could not find the requested resource ({res.plural}/{sub})")
        if method == "GET":
            obj = reg.get(res, ns or "", name)
            if sub == "scale":
                obj = crds.scale_of(obj, res) if res.custom else scale_of(obj)
            if self._wants_table():
                table = _table(res, [obj], obj["metadata"].get("resourceVersion", ""))
                obj = listing.include_object(table, [obj], query.get("includeObject"))
            self._send_json(200, obj)
        elif method == "PUT":
            body = bodies.require_object(self._body(), "Scale" if sub == "scale" else res.kind)
            self._duplicates(res, query)
            if sub == "scale":
                self._send_json(200, reg.set_scale(res, ns or "", name, body, dry_run))
            else:
                validate = fieldvalidation.directive(query)
                obj = self._decoded(
                    res,
                    lambda: reg.update(
                        res,
                        ns or "",
                        name,
                        body,
                        subresource=sub,
                        dry_run=dry_run,
                        field_validation=validate,
                        manager=self._manager(query),
                    ),
                )
                self._send_written(200, obj)
        elif method == "PATCH":
            body = self._body()
            ctype = self.headers.get("Content-Type", "application/merge-patch+json")
            validate = fieldvalidation.directive(query)
            if ctype.startswith("application/apply-patch") and sub is None:
                force = query.get("force") in ("true", "1")
                self._send_json(
                    *self._decoded(
                        res,
                        lambda: apply.server_side_apply(
                            reg, res, ns or "", name, body, query.get("fieldManager"), force, validate, dry_run
                        ),
                    )
                )
                return
            obj = self._decoded(
                res,
                lambda: reg.patch(
                    res,
                    ns or "",
                    name,
                    ctype,
                    body,
                    subresource=sub,
                    dry_run=dry_run,
                    field_validation=validate,
                    manager=self._manager(query),
                ),
            )
            self._send_written(200, obj)
        elif method == "DELETE":
            propagation, grace = delete_options(self._body(), query)
            obj = reg.delete(
                res,
                ns or "",
                name,
                propagation=propagation,
                grace_seconds=grace,
                dry_run=dry_run,
            )
            self._send_json(200, deleted_answer(res, obj))
        else:
            raise ApiError(405, f"{method} is not allowed")

    def _evict(self, ns: str, name: str, dry_run: bool) -> None:
        """POST pods/NAME/eviction: the pod's budget spent by one and the pod deleted, or 429."""
        reg = self.server.registry
        options = eviction.check_body(self._body(), name)
        propagation, grace = delete_options(options, {})
        with eviction.LOCK:  # one eviction at a time spends a budget's last disruption
            pod = reg.get(resources.BY_KIND["Pod"], ns, name)
            uid = (options.get("preconditions") or {}).get("uid")
            if uid and uid != pod["metadata"]["uid"]:
                raise ApiError(
                    409,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {pod['metadata']['uid']}",
                    "Conflict",
                )
            budgets = eviction.with_live_counts(
                reg.list(eviction.PDB, ns)[0], reg.list(resources.BY_KIND["Pod"], ns)[0]
            )
            spent = eviction.verdict(pod, budgets)
            if spent is not None and not dry_run:
                reg.store.update(eviction.PDB, spent, status_only=True)
            reg.delete(
                resources.BY_KIND["Pod"], ns, name, propagation=propagation, grace_seconds=grace, dry_run=dry_run
            )
        self._send_json(201, eviction.SUCCESS)

    @staticmethod
    def _decoded(res: Resource, verb: Any) -> Any:
        """Run a verb on a decoded body. Go decodes into typed structs, so a value of the wrong
        type (a string where a list belongs) is a 400 there; here it surfaces as Python's
        TypeError or AttributeError while defaulting or admitting, and answers the same 400."""
        try:
            return verb()
        except (AttributeError, TypeError, KeyError, IndexError, ValueError, AssertionError, RecursionError) as exc:
            log.warning("refused a %s body: %s: %s", res.kind, type(exc).__name__, exc)
            raise ApiError(
                400, f"the request body cannot be handled as a {res.kind}: {type(exc).__name__}: {exc}"
            ) from None

    def _filters(self, query: dict[str, str]) -> tuple[Any, Any]:
        try:
            labels = selectors.parse_label_selector(query.get("labelSelector"))
            fields = selectors.parse_field_selector(query.get("fieldSelector"))
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return labels, fields

    def _list(self, res: Resource, ns: str | None, query: dict[str, str]) -> None:
        bodies.resource_version(query)
        bodies.query_int(query, "limit", minimum=0)
        bodies.query_int(query, "timeoutSeconds", minimum=0)
        store = self.server.registry.store
        pins = None
        if self._cached_table(res, query):  # (its rows kept: their texts not even read)
            pins = tablecache.Pins(tablecache.of(store), Store.key(res))
        page = lists.select(store, res, ns, query, kept=pins)
        try:
            self._send_list(res, store, page, query, pins)
        finally:
            if len(page.rows or page.objs or []) >= lists.LARGE:
                del page
                lists.release_memory()

    def _cached_table(self, res: Resource, query: dict[str, str]) -> bool:
        """Whether the answer is a Table of rows tablecache keeps."""
        mode = query.get("includeObject") or "Metadata"
        return self._wants_table() and mode == "Metadata" and res.custom is None and tablecache.cacheable(res.kind)

    def _send_list(
        self, res: Resource, store: Store, page: lists.Page, query: dict[str, str], pins: tablecache.Pins | None = None
    ) -> None:
        meta = {"resourceVersion": str(page.rv), **page.more}
        if self._wants_table():
            if page.rows is not None and self._cached_table(res, query):
                # Rows kept ready per object and version: nothing decoded (tablecache.py).
                data = tablecache.table_json(tablecache.of(store), res.kind, Store.key(res), page.rows, meta, pins)
                self._send_bytes(200, "application/json", data)
                return
            items = [crds.as_version(o, res) for o in page.objects()]
            table = _table(res, items, str(page.rv))
            table["metadata"].update(page.more)
            self._send_json(200, listing.include_object(table, items, query.get("includeObject")))
            return
        list_kind = res.custom.list_kind if res.custom else f"{res.kind}List"
        if res.custom is None and not (
            kubeproto.prefers_protobuf(self.headers.get("Accept")) and kubeproto.has_schema(res.api_version, list_kind)
        ):
            # The stored JSON text of each object, as it is: nothing decoded or encoded again.
            head = json.dumps({"kind": list_kind, "apiVersion": res.api_version, "metadata": meta})
            data = "".join((head[:-1], ',"items":[', ",".join(page.json_texts()), "]}")).encode()
            self._send_bytes(200, "application/json", data)
            return
        items = [crds.as_version(o, res) for o in page.objects()]
        self._send_json(200, {"kind": list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items})

    def _watch(self, res: Resource, ns: str | None, name: str | None, query: dict[str, str]) -> None:
        """A watch served from the shared watch cache (watchcache.py): the initial state when
        asked (no resourceVersion, or sendInitialEvents=true, which ends with a BOOKMARK
        annotated `k8s.io/initial-events-end`), then every change after the cursor, BOOKMARKs
        when allowWatchBookmarks=true, and an ERROR 410 once the watcher fell too far behind."""
        store = self.server.registry.store
        labels, fields = self._filters(query)
        key = Store.key(res)
        by_fields = bool(query.get("fieldSelector"))

        def wanted(event: watchcache.Event) -> bool:
            return (
                event.key == key
                and (not ns or not res.namespaced or event.namespace == ns)
                and (not name or event.name == name)
                and labels(event.labels)
                and (not by_fields or fields(event.obj()))
            )

        since = bodies.resource_version(query)
        timeout = min(bodies.query_int(query, "timeoutSeconds", minimum=0) or 1800, 3600)
        send_initial = query.get("sendInitialEvents")
        initial = send_initial == "true" or (since is None and send_initial != "false")
        bookmarks = query.get("allowWatchBookmarks") == "true"
        cache = watchcache.cache_of(store)
        texts: list[str] = []
        if initial:
            select = {k: v for k, v in query.items() if k in ("labelSelector", "fieldSelector")}
            if name:
                select["fieldSelector"] = ",".join(filter(None, [select.get("fieldSelector"), f"metadata.name={name}"]))
            page = lists.select(store, res, ns, select)
            texts, start = page.json_texts(), page.rv
        else:
            start = since if since is not None else cache.rv
        with cache.subscribe(start) as cursor:  # 410 before the stream starts
            table = self._wants_table()
            # Go clients' watches: length-delimited protobuf frames (Tables stay JSON).
            self._watch_protobuf = not table and kubeproto.prefers_protobuf(self.headers.get("Accept"))
            self._watch_protobuf &= kubeproto.has_schema(res.api_version, res.kind)
            # JSON watchers of built-in kinds get the stored text as it is, encoded once for all.
            raw = not table and not self._watch_protobuf and res.custom is None
            self._start_chunked(kubeproto.WATCH_MEDIA_TYPE if self._watch_protobuf else "application/json")
            for text in texts:
                if raw:
                    self._chunk(b'{"type":"ADDED","object":%s}\n' % text.encode())
                else:
                    self._send_event("ADDED", res, json.loads(text), table)
            if send_initial == "true":
                self._bookmark(res, cursor.rv, {"k8s.io/initial-events-end": "true"})
            deadline = time.monotonic() + timeout
            last_bookmark = time.monotonic()
            while time.monotonic() < deadline and not self.server.stopping.is_set():
                try:
                    events = cursor.next(timeout=1.0)
                except ApiError as gone:
                    # A watcher that fell too far behind is dropped, as Kubernetes' watch cache
                    # drops one: it lists again and watches from there.
                    self._chunk(json.dumps({"type": "ERROR", "object": gone.status()}).encode() + b"\n")
                    break
                for event in events:
                    if wanted(event):
                        if raw:
                            self._chunk(event.frame())
                        else:
                            self._send_event(event.type, res, event.obj(), table)
                if bookmarks and time.monotonic() - last_bookmark >= BOOKMARK_SECONDS:
                    self._bookmark(res, cursor.rv)
                    last_bookmark = time.monotonic()
            self._end_chunks()

    def _send_event(self, type_: str, res: Resource, obj: dict[str, Any], table: bool) -> None:
        obj = crds.as_version(obj, res)
        body = _table(res, [obj], obj["metadata"].get("resourceVersion", "")) if table else obj
        if self._watch_protobuf and "kind" not in body:
            body = {"apiVersion": res.api_version, "kind": res.kind, **body}
        self._chunk(kubeproto.watch_frame(type_, body, self._watch_protobuf))

    def _bookmark(self, res: Resource, rv: int, annotations: dict[str, str] | None = None) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if annotations:
            meta["annotations"] = annotations
        body = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
        self._chunk(kubeproto.watch_frame("BOOKMARK", body, self._watch_protobuf))

    def _pod_upgrade(self, sub: str, ns: str, name: str) -> None:
        """exec, attach, portforward: WebSocket only; anything else runs nothing (streaming.py)."""
        query = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        if sub == "portforward":
            pod = self.server.registry.get(resources.BY_KIND["Pod"], ns, name)
            ip = (pod.get("status") or {}).get("podIP")
            if not ip or (pod.get("status") or {}).get("phase") != "Running":
                raise ApiError(400, f"unable to forward ports: pod {name} is not running")
            streaming.serve_portforward(self, query, lambda port: streaming.connect_tcp(ip, port))
            return
        opts = streaming.stream_options(sub, query)
        runtime, pod = self._pod_container(ns, name, opts.container)
        if sub == "exec":
            start = lambda o: runtime.exec_stream(pod, o.container, list(o.command), o.stdin, o.tty)  # noqa: E731
        else:
            start = lambda o: runtime.attach_stream(pod, o.container, o.stdin, o.tty)  # noqa: E731
        streaming.serve_process(self, opts, start, attach=sub == "attach")

    def _pod_container(self, ns: str, name: str, container: str | None) -> tuple[PodRuntimeHooks, dict[str, Any]]:
        runtime = self.server.runtime
        if runtime is None:
            raise ApiError(503, "the pod runtime is not running")
        pod = self.server.registry.get(resources.BY_KIND["Pod"], ns, name)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        if container is None and len(containers) > 1:
            raise ApiError(
                400, f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            )
        if container is not None and container not in containers:
            raise ApiError(400, f"container {container} is not valid for pod {name}")
        return runtime, pod

    def _pod_stream(self, sub: str, ns: str, name: str, query: dict[str, str]) -> None:
        runtime = self.server.runtime
        if runtime is None:
            raise ApiError(503, "the pod runtime is not running")
        pod = self.server.registry.get(resources.BY_KIND["Pod"], ns, name)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container")
        if container is None and len(containers) > 1:
            raise ApiError(
                400, f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            )
        if container is not None and container not in containers:
            raise ApiError(400, f"container {container} is not valid for pod {name}")
        if sub == "log":
            tail = bodies.query_int(query, "tailLines", minimum=0)
            opts = logfilter.options(query, datetime.now(UTC))
            chunks = logfilter.apply(
                runtime.logs(
                    pod,
                    container,
                    follow=query.get("follow") == "true",
                    previous=query.get("previous") == "true",
                    tail=tail,
                    timestamps=opts.runtime_timestamps,
                ),
                opts,
            )
            first = next(chunks, b"")  # errors (no previous run...) surface before the 200
            self._start_chunked("text/plain")
            self._chunk(first)
            for chunk in chunks:
                if self.server.stopping.is_set():
                    break
                self._chunk(chunk)
            self._end_chunks()
            return


def _table(res: Resource, items: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    if res.custom is not None:
        return crds.table(res, items, resource_version)
    return printers.table(res.kind, items, resource_version)


def deleted_answer(res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """What a DELETE answers, as kube-apiserver does: the object while its deletion is pending
    (finalizers, a graceful Pod), a Status of Success once it is gone."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return obj
    details = {"name": meta.get("name"), "group": res.group, "kind": res.plural, "uid": meta.get("uid")}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")


def delete_options(body: Any, query: dict[str, str]) -> tuple[str | None, int | None]:
    """propagationPolicy and gracePeriodSeconds of a DELETE, from its DeleteOptions body or
    its query; 400/422 for values Kubernetes refuses."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body cannot be handled as a DeleteOptions: expected an object")
    grace: Any = body.get("gracePeriodSeconds")
    if grace is None:
        grace = bodies.query_int(query, "gracePeriodSeconds")
    elif isinstance(grace, bool) or not isinstance(grace, int):
        raise ApiError(
            400, "the request body cannot be handled as a DeleteOptions: gracePeriodSeconds: expected an integer"
        )
    propagation = body.get("propagationPolicy") or query.get("propagationPolicy")
    if propagation is not None and propagation not in PROPAGATION_POLICIES:
        choices = ", ".join(f'"{p}"' for p in PROPAGATION_POLICIES)
        raise ApiError(
            422,
            f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "{propagation}": '
            f"supported values: {choices}",
            "Invalid",
        )
    if grace is not None and grace < 0:
        grace = 0  # Kubernetes treats a negative grace period as an immediate delete
    return propagation, grace


def serve(
    registry: Registry, token: str, runtime: PodRuntimeHooks | None, port: int = 0, tls: tuple[str, str] | None = None
) -> ApiHTTPServer:
    server = ApiHTTPServer(("127.0.0.1", port), registry, token, runtime)
    watchcache.cache_of(registry.store)  # from now on, so that a watch resumes from any later version
    if tls is not None:
        # The listening socket stays plain: each connection's thread does its own handshake.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.tls_context = context
    # `mikro stop` waits for `shutdown`, which the loop sees at its next poll: every 0.1 s, not
    # the default 0.5 s (a stop of 20 pods spent 0.13-0.43 s there; ten wakeups a second idle).
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL}, name="apiserver", daemon=True
    ).start()
    return server
