"""`mikro kubectl get KIND [-n NS | -A] [-l SEL] [--field-selector SEL] [-o wide]` of a built-in
kind, with the least work Python can do: the one request kubectl makes (the server's Table),
on a raw TLS socket, printed with kubectl's layout.

The command people time against kubectl. After the interpreter's own start, the general path
(mikro.cli.kubectl.get) spent most of its time importing: http.client and the email package
behind it (~40 ms of CPU here), mikro.api.resources' dataclasses (~15 ms), mikro.config, the
printers. This path imports json, _socket and _ssl (msgspec too for a large Table), of mikro
only mikro.cli.layout, and reads the columns from the Table itself (their names upper-cased
and their priorities, as kubectl does; the server's columns are printers.py's, so the headers
are the same words).

It takes only the happy path: anything else (a kind not in KINDS, an answer that is not a 200,
a connection that fails, a state directory that is not the user's own) returns None, and the
caller runs the general path, which words every error. The output is the general path's, byte
for byte (tests/test_quickget.py compares them).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # (typing itself is not imported: its import is a cost of this path)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Decoded = tuple[list[tuple[str, Any]], list[list[Any]], list[str] | None]

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
USER_AGENT = "mikro/0.1.0"  # mikro.__version__'s (tests/test_quickget.py checks)
TIMEOUT = 60.0
# A Table this big is decoded with msgspec (its import costs more than json's, its decoding
# ten times less).
LARGE = 256 * 1024

# The built-in kinds as mikro.api.resources has them: plural, singular, short names, group,
# API prefix, namespaced. A kind missing here only takes the general path (the test checks
# that every row is the resource table's).
KINDS: tuple[tuple[str, str, tuple[str, ...], str, str, bool], ...] = (
    ("namespaces", "namespace", ("ns",), "", "/api/v1", False),
    ("pods", "pod", ("po",), "", "/api/v1", True),
    ("services", "service", ("svc",), "", "/api/v1", True),
    ("endpoints", "endpoints", ("ep",), "", "/api/v1", True),
    ("configmaps", "configmap", ("cm",), "", "/api/v1", True),
    ("secrets", "secret", (), "", "/api/v1", True),
    ("events", "event", ("ev",), "", "/api/v1", True),
    ("serviceaccounts", "serviceaccount", ("sa",), "", "/api/v1", True),
    ("persistentvolumeclaims", "persistentvolumeclaim", ("pvc",), "", "/api/v1", True),
    ("persistentvolumes", "persistentvolume", ("pv",), "", "/api/v1", False),
    ("nodes", "node", ("no",), "", "/api/v1", False),
    ("deployments", "deployment", ("deploy",), "apps", "/apis/apps/v1", True),
    ("replicasets", "replicaset", ("rs",), "apps", "/apis/apps/v1", True),
    ("statefulsets", "statefulset", ("sts",), "apps", "/apis/apps/v1", True),
    ("daemonsets", "daemonset", ("ds",), "apps", "/apis/apps/v1", True),
    ("jobs", "job", (), "batch", "/apis/batch/v1", True),
    ("cronjobs", "cronjob", ("cj",), "batch", "/apis/batch/v1", True),
    ("ingresses", "ingress", ("ing",), "networking.k8s.io", "/apis/networking.k8s.io/v1", True),
    ("storageclasses", "storageclass", ("sc",), "storage.k8s.io", "/apis/storage.k8s.io/v1", False),
    ("horizontalpodautoscalers", "horizontalpodautoscaler", ("hpa",), "autoscaling", "/apis/autoscaling/v2", True),
)


def lookup(name: str) -> tuple[str, bool] | None:
    """(the list path's prefix and plural, namespaced) of a kind named as kubectl names it
    (plural, singular, short name, `plural.group`); None if not in KINDS."""
    key = name.lower()
    for plural, singular, short, group, prefix, namespaced in KINDS:
        names = (plural, singular, *short)
        if key in names:
            return f"{prefix}/{plural}", namespaced
        if "." in key:
            base, _, in_group = key.partition(".")
            if in_group == group and base in names:
                return f"{prefix}/{plural}", namespaced
    return None


def _endpoint() -> tuple[int, str, str] | None:
    """(port, token, CA file) of the running control plane, as Client.from_state reads them;
    None when anything is off (the general path says what)."""
    import json

    home = os.environ.get("MIKRO_HOME")
    if home:
        root = os.path.expanduser(home)
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        root = os.path.join(xdg, "mikro")
    try:
        st = os.stat(root)
        if (st.st_mode & 0o170000) != 0o040000 or st.st_uid != os.getuid():
            return None  # config.paths() refuses it, in its words
        with open(os.path.join(root, "apiserver.json"), "rb") as fh:
            info = json.loads(fh.read())
        pid = info.get("pid")
        if pid:
            try:
                os.kill(int(pid), 0)
            except PermissionError:
                pass  # someone else's process: running
        return int(info["port"]), str(info["token"]), os.path.join(root, "pki", "ca.crt")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def fetch(port: int, token: str, ca_file: str, url: str) -> bytes | None:
    """The body of a 200 answer to GET `url` (the Table), else None.

    Through CPython's _socket and _ssl, the C modules under socket and ssl: those two Python
    modules build their enums at import, ~10 ms of CPU together, about a third of what this
    command does after the interpreter's start. The context is what ssl.SSLContext(
    PROTOCOL_TLS_CLIENT) makes (it is _ssl's own default: the certificate and the name are
    verified, checked below); it trusts the cluster's CA only, not the system's store. An
    interpreter whose _ssl differs raises here, and the general path runs instead."""
    import _socket
    import _ssl

    class Socket(_socket.socket):  # (_ssl keeps a weak reference to its socket)
        __slots__ = ("__weakref__",)

    try:
        context = _ssl._SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        if context.verify_mode != _ssl.CERT_REQUIRED or not context.check_hostname:
            return None
        context.load_verify_locations(ca_file)
        raw = Socket(_socket.AF_INET, _socket.SOCK_STREAM)
    except (AttributeError, TypeError, OSError, ValueError):
        return None
    try:
        raw.settimeout(TIMEOUT)
        raw.connect(("127.0.0.1", port))
        tls = context._wrap_socket(raw, False, "127.0.0.1")
        tls.do_handshake()
        request = (
            f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Accept: {TABLE}\r\nUser-Agent: {USER_AGENT}\r\n\r\n"
        ).encode()
        while request:
            request = request[tls.write(request) :]
        return _read_answer(tls.read)
    except (AttributeError, TypeError, OSError, ValueError):
        return None
    finally:
        raw.close()


def _read_answer(read: Callable[..., Any]) -> bytes | None:
    """The body of a 200 answer with a Content-Length, read with `read` (an _ssl socket's:
    read(size) -> bytes, read(size, buffer) -> count); else None."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = read(65536)
        if not chunk:
            return None
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "200":
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("content-encoding", "identity") != "identity" or "content-length" not in headers:
        return None  # (the server sends a Table whole, with its length)
    length = int(headers["content-length"])
    if len(data) >= length:
        return data[:length]
    # Into one buffer, record after record (a bytes object per read of a large size would be
    # allocated, and mapped, at that size each time).
    body = bytearray(length)
    view = memoryview(body)
    got = len(data)
    view[:got] = data
    while got < length:
        count = read(length - got, view[got:])
        if not count:
            return None
        got += count
    return bytes(body)


def get(options: dict[str, object]) -> int | None:
    """Run `get` with entry.parse_get's options and return the exit code; None when this path
    does not take them (the caller then runs the general one)."""
    targets = options["targets"]
    output = options["output"]
    if options["watch"] or output not in (None, "wide") or not isinstance(targets, list) or len(targets) != 1:
        return None
    target = targets[0]
    if "/" in target or "," in target or target == "all":
        return None
    found = lookup(target)
    if found is None:
        return None
    path, namespaced = found
    all_namespaces = bool(options["all_namespaces"])
    namespace = str(options["namespace"])
    if namespaced and not all_namespaces:
        if not namespace.isascii() or not namespace.replace("-", "").replace(".", "").isalnum():
            return None  # (it goes into the request line as is: a name's characters only)
        prefix, _, plural = path.rpartition("/")
        path = f"{prefix}/namespaces/{namespace}/{plural}"
    query = {
        k: v for k, v in (("labelSelector", options["selector"]), ("fieldSelector", options["field_selector"])) if v
    }
    if query:
        from urllib.parse import urlencode

        path += "?" + urlencode(query, doseq=True)
    endpoint = _endpoint()
    if endpoint is None:
        return None
    body = fetch(*endpoint, path)
    if body is None:
        return None
    try:
        decoded = decode(body, all_namespaces and namespaced)
        text = None if decoded is None else render(*decoded, wide=output == "wide")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None
    if decoded is None:
        return None
    if text is None:
        where = "" if all_namespaces else f" in {namespace} namespace"
        sys.stderr.write(f"No resources found{where}.\n")
        return 0
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        return 0
    return 0


def decode(body: bytes, with_namespace: bool) -> Decoded | None:
    """A Table's (column name, priority) pairs, its rows' cells, and (with_namespace) its rows'
    namespaces, from its JSON; None if it is not one this path prints."""
    if len(body) >= LARGE:
        try:
            from mikro.cli import tableshape
        except ImportError:  # (msgspec is a dependency; without it, json does it, slower)
            pass
        else:
            return _decode_typed(tableshape.decode(body), with_namespace)
    import json

    table = json.loads(body)
    rows = table.get("rows") or []
    if not rows:
        return [], [], None
    columns = [(c["name"], c.get("priority")) for c in table["columnDefinitions"]]
    cells = [r.get("cells") or [] for r in rows]
    namespaces = [(r.get("object") or {})["metadata"].get("namespace", "") for r in rows] if with_namespace else None
    return columns, cells, namespaces


def _decode_typed(table: Any, with_namespace: bool) -> Decoded | None:
    """decode, from a tableshape.Table."""
    if table is None:
        return None
    rows = table.rows or []
    if not rows:
        return [], [], None
    columns = [(c.name, c.priority) for c in table.columnDefinitions]
    cells = [r.cells or [] for r in rows]
    if not with_namespace:
        return columns, cells, None
    if any(r.object is None for r in rows):
        return None
    return columns, cells, [r.object.metadata.namespace for r in rows]  # type: ignore[union-attr]


def render(
    columns: list[tuple[str, Any]], cells: list[list[Any]], namespaces: list[str] | None, wide: bool
) -> str | None:
    """The text kubectl.get prints for a Table (None: no rows): the columns of priority 0 (all
    of them when wide), their names upper-cased, the cells as str() makes them."""
    from mikro.cli.layout import format_columns, format_table

    if not cells:
        return None
    shown = [i for i, (_, priority) in enumerate(columns) if wide or not priority]
    headers = [columns[i][0].upper() for i in shown]
    if namespaces is not None:
        headers = ["NAMESPACE", *headers]
    count = len(columns)
    if any(len(row) != count for row in cells):
        body = [[str(row[i]) for i in shown] for row in cells]
        if namespaces is not None:
            body = [[ns, *b] for ns, b in zip(namespaces, body, strict=True)]
        return format_table(headers, body)
    by_column = list(zip(*cells, strict=True))  # (column by column: C loops, not one per cell)
    texts = [list(map(str, by_column[i])) for i in shown]
    return format_columns(headers, [namespaces, *texts] if namespaces is not None else texts)


def leave(code: int) -> None:
    """Exit with `code` once the output is out, without the interpreter's finalization (every
    module torn down, the site-packages' too: ~20 ms of a ~100 ms command here). Nothing of
    this path needs an exit handler; under coverage (which writes its data at exit), or if the
    output cannot be flushed, the ordinary exit."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        sys.exit(code)
    if "coverage" in sys.modules:
        sys.exit(code)
    os._exit(code)
