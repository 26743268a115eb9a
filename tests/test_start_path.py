"""The start path's shortcuts give what the full path gives: the image tag without the Docker
SDK, the existing container started over the engine's socket, the certificate's addresses
without cryptography, the token key read at its first use, the heavy imports left out of the
control plane's boot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import ThreadingMixIn, UnixStreamServer
from typing import Any

import pytest

from mikro import lifecycle
from mikro.api import pki, tokens
from mikro.node import cpimage, enginelite
from tests.test_cpimage_cache import Engine as ImageEngine


class Engine(ImageEngine):
    """The image and container calls over a set of tags and containers."""

    def __init__(self, tags: set[str], containers: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__(tags)
        self.containers = containers or {}
        self.started: list[str] = []

    def inspect(self, name: str) -> dict[str, Any] | None:
        return self.containers.get(name)

    def start(self, name: str) -> None:
        self.started.append(name)
        self.containers[name]["State"] = {"Running": True, "Pid": 42}


def test_current_tag_is_the_tag_ensure_gives_once_cached(tmp_path: Path) -> None:
    cache = tmp_path / "images.json"
    engine = Engine(set())
    assert cpimage.current_tag(engine, cache) is None  # nothing cached: ensure decides
    tag, built = cpimage.ensure(engine, print, cache=cache)  # type: ignore[arg-type]
    assert built
    assert cpimage.current_tag(engine, cache) == tag
    engine.tags.clear()  # the image was removed: no shortcut
    assert cpimage.current_tag(engine, cache) is None


def test_current_tag_needs_a_current_base(tmp_path: Path) -> None:
    cache = tmp_path / "images.json"
    engine = Engine(set())
    cpimage.ensure(engine, print, cache=cache)  # type: ignore[arg-type]

    class OldBase(Engine):
        def image(self, ref: str) -> dict[str, Any] | None:
            if ref.startswith("mikro/python:"):
                return {"Id": "sha256:base", "Config": {"Labels": {cpimage.PACKAGES_LABEL: "python3"}}}
            return super().image(ref)

    assert cpimage.current_tag(OldBase(engine.tags), cache) is None


def _spec() -> lifecycle.SupervisedContainer:
    return lifecycle.container_spec("c1", Path("/state"), "mikro/controlplane:abc", None, 1000, 1000, 999, None)


def test_start_existing_starts_a_container_of_the_same_spec() -> None:
    spec = _spec()
    labels = {**spec.labels, "io.mikro/spec-hash": lifecycle.spec_hash(spec)}
    engine = Engine(set(), {spec.name: {"Config": {"Labels": labels}, "State": {"Running": False}}})
    info = lifecycle.start_existing(engine, spec)
    assert engine.started == [spec.name]
    assert info is not None and info["State"] == {"Running": True, "Pid": 42}
    assert lifecycle.start_existing(engine, spec) is not None  # running: not started twice
    assert engine.started == [spec.name]


@pytest.mark.parametrize("labels", [None, {"io.mikro/spec-hash": "other"}])
def test_start_existing_leaves_a_missing_or_changed_container_to_the_full_path(labels: dict[str, str] | None) -> None:
    spec = _spec()
    engine = Engine(set(), {} if labels is None else {spec.name: {"Config": {"Labels": labels}, "State": {}}})
    assert lifecycle.start_existing(engine, spec) is None
    assert engine.started == []


@pytest.mark.parametrize(
    ("host", "path"),
    [
        (None, "/var/run/docker.sock"),
        ("unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock"),
        ("tcp://127.0.0.1:2375", None),
        ("unix://relative.sock", None),
    ],
)
def test_the_engines_socket(host: str | None, path: str | None) -> None:
    assert enginelite.socket_path(host) == path


class _UnixHTTPServer(ThreadingMixIn, UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[Any, Any]:
        request, _ = super().get_request()
        return request, ("local", 0)


class _EngineHandler(BaseHTTPRequestHandler):
    """A stand-in for the engine's API: subclasses answer with `_answer`."""

    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_light_engine_speaks_the_engines_api(tmp_path: Path) -> None:
    calls: list[tuple[str, str]] = []

    class Handler(_EngineHandler):
        def do_GET(self) -> None:  # noqa: N802
            calls.append(("GET", self.path))
            if self.path == "/images/mikro/pause:1/json":
                self._answer(200, {"Id": "sha256:p"})
            elif self.path == "/containers/c1-control-plane/json":
                self._answer(200, {"State": {"Running": True}})
            else:
                self._answer(404, {"message": "No such object"})

        def do_POST(self) -> None:  # noqa: N802
            calls.append(("POST", self.path))
            if self.path.startswith("/containers/c1-control-plane/"):
                self._answer(204)
            else:
                self._answer(500, {"message": "boom"})

    sock = str(tmp_path / "engine.sock")
    httpd = _UnixHTTPServer(sock, Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        engine = enginelite.Engine(sock, timeout=5)
        assert engine.image("mikro/pause:1") == {"Id": "sha256:p"}
        assert engine.image("mikro/absent:1") is None
        assert engine.inspect("c1-control-plane") == {"State": {"Running": True}}
        assert engine.inspect("other") is None
        engine.start("c1-control-plane")
        engine.stop("c1-control-plane", 5)
        with pytest.raises(enginelite.EngineError, match="boom"):
            engine.start("other")
        for bad in ("../containers/x", "-x", "a b", "a//b"):
            with pytest.raises(enginelite.EngineError, match="not a container or image reference"):
                engine.inspect(bad)
        engine.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert ("POST", "/containers/c1-control-plane/stop?t=5") in calls


@pytest.mark.parametrize("running", [True, False])
def test_mikro_stop_stops_the_control_planes_container_without_the_docker_sdk(tmp_path: Path, running: bool) -> None:
    calls: list[tuple[str, str]] = []

    class Handler(_EngineHandler):
        def do_GET(self) -> None:  # noqa: N802
            calls.append(("GET", self.path))
            labels = {"io.mikro/cluster": "c1", "io.mikro/kind": "controlplane"}
            self._answer(200, {"Config": {"Labels": labels}, "State": {"Running": running}})

        def do_POST(self) -> None:  # noqa: N802
            calls.append(("POST", self.path))
            self._answer(204)

    sock = str(tmp_path / "engine.sock")
    httpd = _UnixHTTPServer(sock, Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    code = (
        "import sys\n"
        "from mikro.cli import supervised\n"
        "print(supervised.stop('c1', 7), 'docker' in sys.modules or 'requests' in sys.modules)\n"
    )
    try:
        env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (out.stdout.strip(), out.stderr) == (f"{running} False", "")
    assert calls == [("GET", "/containers/c1-control-plane/json")] + (
        [("POST", "/containers/c1-control-plane/stop?t=7")] if running else []
    )


def test_the_certificates_addresses_are_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "pki"
    first = pki.ensure(directory, ("10.152.128.1", "10.152.0.1"))
    seen = directory / pki.SANS_SEEN
    assert seen.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(seen.read_text())["ips"]) >= {"127.0.0.1", "10.152.128.1", "10.152.0.1"}
    checked: list[Path] = []
    real = pki._has_ips
    monkeypatch.setattr(pki, "_has_ips", lambda crt, ips: checked.append(crt) or real(crt, ips))
    before = (directory / "apiserver.crt").read_bytes()
    assert pki.ensure(directory, ("10.152.128.1", "10.152.0.1")) == first
    assert checked == []  # remembered: the certificate was not parsed
    # another address: checked, then a new certificate holding it
    pki.ensure(directory, ("10.152.128.1", "10.99.0.1"))
    assert checked and (directory / "apiserver.crt").read_bytes() != before
    assert real(directory / "apiserver.crt", ("10.152.128.1", "10.99.0.1"))
    # a note about another certificate is not believed
    seen.write_text(json.dumps({"sha256": "0" * 64, "ips": ["10.1.1.1"]}))
    checked.clear()
    pki.ensure(directory, ("10.1.1.1",))
    assert checked
    assert real(directory / "apiserver.crt", ("10.1.1.1",))


def test_the_signing_key_is_made_at_the_first_token(tmp_path: Path) -> None:
    path = tmp_path / "sa.key"
    issuer = tokens.Issuer.load_or_create(path)
    assert not path.exists()
    token, _ = issuer.issue("team", "robot", "u", 1_000_000)
    assert path.stat().st_mode & 0o777 == 0o600
    again = tokens.Issuer.load_or_create(path)
    again.load_now()
    assert again.verify(token, now=1_000_001) is not None


def loaded_after(imports: list[str], modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh interpreter has loaded after these import lines."""
    code = "\n".join(["import sys", *imports, f"print(sorted(m for m in {modules!r} if m in sys.modules))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().replace("'", '"'))


def test_the_control_plane_boots_without_the_heavy_imports() -> None:
    imports = [
        "from mikro import controlplane",
        "from mikro.api.server import serve",
        "from mikro.api.registry import Registry",
        "from mikro.controllers.manager import Controllers",
        "from mikro.net.network import Network",
        "from mikro.node.runtime import PodRuntime",
    ]
    assert loaded_after(imports, ("jwt", "croniter", "wsproto", "yaml", "cryptography")) == []


def test_mikro_start_imports_no_docker_sdk_on_its_common_path() -> None:
    imports = ["from mikro.cli import supervised", "from mikro.node import cpimage, enginelite"]
    assert loaded_after(imports, ("docker", "requests")) == []


@pytest.mark.parametrize(("argv", "prestarted"), [(["start"], True), (["start", "--help"], False), (["status"], False)])
def test_a_plain_start_sets_the_stopped_containers_starting_first(
    argv: list[str], prestarted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mikro.cli import entry, main, supervised
    from mikro.node import prestart

    calls: list[Any] = []
    monkeypatch.setenv("MIKRO_HOME", str(tmp_path))
    monkeypatch.setenv("MIKRO_CLUSTER", "c1")
    monkeypatch.setattr(supervised, "start_early", lambda paths, cluster: calls.append(("cp", cluster)))
    monkeypatch.setattr(prestart, "begin", lambda root, only_if_recorded=False: calls.append((root, only_if_recorded)))
    monkeypatch.setattr(main, "run", lambda: None)
    monkeypatch.setattr(sys, "argv", ["mikro", *argv])
    entry.run()
    # the pods' containers set starting first, then the control plane's container beside them
    assert calls == ([(tmp_path, True), ("cp", "c1")] if prestarted else [])
    calls.clear()
    (tmp_path / "cluster.json").write_text(json.dumps({"autostart": False}))  # a forked control plane
    entry.run()
    assert calls == ([(tmp_path, True)] if prestarted else [])


ENABLE_WITH_STAND_INS = """
import sys
from mikro.cli import main
from mikro.node import enginelite

class Engine:
    def image(self, ref): return {"Id": ref}
    def close(self): pass

class Client:
    data = {}
    def get(self, resource, ns, name): return {"data": dict(self.data)}
    def patch(self, resource, ns, name, patch):
        self.data.update({k: v for k, v in patch["data"].items() if v is not None})
        self.data["ingress.status"] = "running"  # (the control plane's answer)
    def create(self, resource, ns, body): return body

enginelite.Engine.from_env = staticmethod(lambda: Engine())
main.Client.from_state = staticmethod(lambda: Client())
main._enable(main.addon_catalog(), "ingress", 80, 443, 5)
print(sorted(m for m in ("docker", "requests") if m in sys.modules))
"""


def test_enable_ingress_checks_its_image_without_the_docker_sdk() -> None:
    """`mikro enable ingress` is one of the four commands of a cold first answer: the check of
    the NGINX image goes over the engine's socket, and naming that image loads no Docker SDK."""
    out = subprocess.run([sys.executable, "-c", ENABLE_WITH_STAND_INS], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["Enabling ingress", "Addon ingress is enabled (HTTP on port 80, HTTPS on port 443)", "[]"]
