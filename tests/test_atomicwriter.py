"""The kubelet's AtomicWriter layout for configMap and secret volumes (no Docker): files in a
timestamped directory behind `..data`, visible names linking through it, swapped whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mikro.node import atomicwriter
from mikro.node.podplan import UnsafePath


def visible(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in directory.iterdir() if not p.name.startswith("..") and p.is_file()}


def test_files_are_written_behind_data(tmp_path: Path) -> None:
    assert atomicwriter.write(tmp_path, {"a": b"1", "conf/b.yaml": b"2"})
    assert os.readlink(tmp_path / "a") == "..data/a" and os.readlink(tmp_path / "conf") == "..data/conf"
    assert (tmp_path / "conf" / "b.yaml").read_text() == "2"
    target = os.readlink(tmp_path / "..data")
    assert target.startswith("..") and (tmp_path / target).is_dir()
    assert oct((tmp_path / target / "a").stat().st_mode & 0o777) == "0o644"


def test_an_update_swaps_the_whole_set_and_drops_the_old(tmp_path: Path) -> None:
    atomicwriter.write(tmp_path, {"a": b"1", "b": b"2"})
    first = os.readlink(tmp_path / "..data")
    assert atomicwriter.write(tmp_path, {"a": b"changed", "c": b"3"}, mode=0o400)
    assert visible(tmp_path) == {"a": "changed", "c": "3"}
    assert not (tmp_path / first).exists() and not (tmp_path / "b").exists()
    second = os.readlink(tmp_path / "..data")
    assert oct((tmp_path / second / "c").stat().st_mode & 0o777) == "0o400"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("..")) == sorted(["..data", second])


def test_the_same_files_write_nothing(tmp_path: Path) -> None:
    atomicwriter.write(tmp_path, {"a": b"1"})
    before = os.readlink(tmp_path / "..data")
    assert not atomicwriter.write(tmp_path, {"a": b"1"})
    assert os.readlink(tmp_path / "..data") == before


def test_a_volume_written_before_atomic_volumes_is_converted(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("old plain file")
    (tmp_path / "gone").write_text("no longer in the object")
    assert atomicwriter.write(tmp_path, {"a": b"new"})
    assert (tmp_path / "a").is_symlink() and visible(tmp_path) == {"a": "new"}


def test_an_empty_object_empties_the_volume(tmp_path: Path) -> None:
    atomicwriter.write(tmp_path, {"a": b"1"})
    assert atomicwriter.write(tmp_path, {})
    assert visible(tmp_path) == {} and atomicwriter.current(tmp_path) == {}


def test_a_path_leaving_the_volume_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafePath):
        atomicwriter.write(tmp_path / "vol", {"../escape": b"x"})
    assert not (tmp_path / "escape").exists()
