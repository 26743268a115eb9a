"""The kubelet's AtomicWriter for configMap and secret volumes: the files live in a timestamped
directory `..<time>`, `..data` links to it, and every visible name links through `..data`.
An update writes a new directory and swaps `..data` with one rename, so a process in the pod
reading the volume sees either the old set of files or the new one, never a mix (the layout
that applications watching `..data` for changes, and Kubernetes users' habits, rely on)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from mikro.node.podplan import contained

DATA = "..data"


def current(directory: Path) -> dict[str, bytes] | None:
    """The files `..data` holds now (None when the directory has no `..data` yet)."""
    data = directory / DATA
    if not data.is_symlink():
        return None
    root = Path(contained(str(directory), DATA, "volume"))
    files: dict[str, bytes] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def write(directory: Path, files: dict[str, bytes], mode: int = 0o644) -> bool:
    """Make `directory` hold exactly `files` (path -> content); whether anything changed."""
    directory.mkdir(parents=True, exist_ok=True)
    if current(directory) == files:
        return False
    old = os.readlink(directory / DATA) if (directory / DATA).is_symlink() else None
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    fresh = Path(tempfile.mkdtemp(prefix=stamp, dir=directory))
    fresh.chmod(0o755)  # mkdtemp's 0700 would hide the files from a pod's non-root user
    for path, content in files.items():
        target = Path(contained(str(fresh), path, "volume file"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
    swap = directory / "..data_tmp"
    if swap.is_symlink() or swap.exists():
        swap.unlink()
    os.symlink(fresh.name, swap)
    os.replace(swap, directory / DATA)  # the one atomic step
    visible = {path.split("/", 1)[0] for path in files}
    for name in visible:
        link = directory / name
        if link.is_symlink() and os.readlink(link) == f"{DATA}/{name}":
            continue
        _remove(link)  # a file or directory written before volumes were atomic
        os.symlink(f"{DATA}/{name}", link)
    for entry in directory.iterdir():
        if not entry.name.startswith("..") and entry.name not in visible:
            _remove(entry)
    if old and old != fresh.name and "/" not in old and not old.startswith(DATA):
        shutil.rmtree(directory / old, ignore_errors=True)
    return True


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
