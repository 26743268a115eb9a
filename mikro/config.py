"""Where a cluster keeps its state, and the settings recorded there.

Everything lives under one state directory: `$MIKRO_HOME`, or `$XDG_DATA_HOME/mikro`
(`~/.local/share/mikro`). The cluster name comes from `$MIKRO_CLUSTER` (default `mikro`).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mikro.errors import StateDirError

DEFAULT_CLUSTER = "mikro"
LABEL_PREFIX = "io.mikro/"
# The images mikro builds offline (mikro.node.images makes them): named here, where a command
# that only checks for them needs no Docker SDK.
INFRA_IMAGE = "mikro/pause:1"
NGINX_IMAGE = "mikro/nginx:1.22"


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
    """The state directory's paths; StateDirError when it exists and is not the user's own
    (its endpoint file names a pid to signal, `reset` deletes in it)."""
    p = Paths(state_dir())
    try:
        st = p.root.stat()
    except OSError:
        return p
    _check_owner(p.root, st)
    return p


def _check_owner(root: Path, st: os.stat_result) -> None:
    if not stat.S_ISDIR(st.st_mode):
        raise StateDirError(f"{root} is not a directory; set MIKRO_HOME to a directory of your own")
    if st.st_uid != os.getuid():
        raise StateDirError(
            f"{root} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}): refusing to use it "
            "as mikro's state directory; set MIKRO_HOME to a directory of your own"
        )


def ensure_state_dir() -> Paths:
    """The state directory, made owner-only (0700, its files 0600): it holds the token, the CA
    key and every Secret. One that exists and belongs to another user is refused, never
    chmod-ed: `MIKRO_HOME=/etc` must not make /etc private to whoever ran mikro."""
    p = paths()
    try:
        p.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = p.root.stat()
    except OSError as exc:
        raise StateDirError(f"cannot use {p.root} as mikro's state directory: {exc.strerror}") from None
    _check_owner(p.root, st)
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(p.root, 0o700)
    for f in (p.db, p.root / "store.db-wal", p.root / "store.db-shm", p.settings, p.endpoint, p.log):
        try:
            if f.stat().st_mode & 0o077:
                os.chmod(f, 0o600)
        except FileNotFoundError:
            pass
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
