"""A cluster's API in the test's own process: a real store and a real TLS API server in a
thread, with the state directory (pki, apiserver.json) the CLI reads, under MIKRO_HOME."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mikro import config
from mikro.api import pki
from mikro.api.registry import Registry
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.controlplane import bootstrap


@contextmanager
def api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: str) -> Iterator[Registry]:
    """The registry of a running API server for `cluster` (token `tok`), stopped on leaving."""
    monkeypatch.setenv("MIKRO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MIKRO_CLUSTER", cluster)
    paths = config.ensure_state_dir()
    _, cert, key = pki.ensure(paths.pki)
    registry = Registry(Store(paths.db), "10.152.128.0/17", cluster)
    bootstrap(registry, cluster, cluster, "10.152.0.1")
    server = serve(registry, "tok", None, 0, (str(cert), str(key)))
    server.ready.set()
    endpoint = {"port": server.server_address[1], "token": "tok", "pid": os.getpid(), "cluster": cluster}
    config.write_private(paths.endpoint, json.dumps(endpoint))
    try:
        yield registry
    finally:
        server.stopping.set()
        server.shutdown()
