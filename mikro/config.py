"""Where a cluster keeps its state, and the settings recorded there.

Everything lives under one state directory: `$MIKRO_HOME`, or `$XDG_DATA_HOME/mikro`
(`~/.local/share/mikro`). The cluster name comes from `$MIKRO_CLUSTER` (default `mikro`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_CLUSTER = "mikro"
LABEL_PREFIX = "io.mikro/"


def state_dir() -> Path:
    home = os.environ.get("MIKRO_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "mikro"


def cluster_name() -> str:
    return os.environ.get("MIKRO_CLUSTER") or DEFAULT_CLUSTER


@dataclass
class Paths:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "store.db"

    @property
    def settings(self) -> Path:
        return self.root / "cluster.json"

    @property
    def endpoint(self) -> Path:
        """Written by a running control plane: its address, token and pid."""
        return self.root / "apiserver.json"

    @property
    def log(self) -> Path:
        return self.root / "controlplane.log"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def ca(self) -> Path:
        return self.root / "pki" / "ca.crt"

    @property
    def proxies(self) -> Path:
        return self.root / "proxies"

    @property
    def ingress(self) -> Path:
        return self.root / "ingress"

    @property
    def volumes(self) -> Path:
        """Persistent volumes the mikro-hostpath class provisions: one directory per claim."""
        return self.root / "volumes"


def paths() -> Paths:
    return Paths(state_dir())


def ensure_state_dir() -> Paths:
    p = paths()
    p.root.mkdir(parents=True, exist_ok=True)
    os.chmod(p.root, 0o700)
    return p


def write_private(path: Path, data: str) -> None:
    """Write a file readable by its owner only, atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_settings(p: Paths) -> dict[str, Any]:
    return read_json(p.settings) or {}


def save_settings(p: Paths, settings: dict[str, Any]) -> None:
    write_private(p.settings, json.dumps(settings, indent=2, sort_keys=True))
