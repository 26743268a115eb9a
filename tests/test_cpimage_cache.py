"""`mikro start` reuses the control plane image's tag while mikro's code is unchanged."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import mikro
from mikro.net import ingress
from mikro.node import cpimage


class Engine:
    """The image calls of mikro's Docker backend, over a set of tags."""

    def __init__(self, tags: set[str]) -> None:
        self.tags = tags
        self.built: list[str] = []

    def image(self, ref: str) -> dict[str, Any] | None:
        if ref.startswith("mikro/python:"):  # a base holding today's package list
            return {
                "Id": "sha256:base",
                "Config": {"Labels": {cpimage.PACKAGES_LABEL: ",".join(cpimage.BASE_PACKAGES)}},
            }
        return {"Id": "sha256:image"} if ref in self.tags else None

    def build(self, context: bytes, tag: str, labels: dict[str, str]) -> None:
        self.built.append(tag)
        self.tags.add(tag)

    def images(self, label: str) -> list[dict[str, Any]]:
        return []


def test_the_cache_gives_the_tag_the_fingerprint_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "controlplane-image.json"
    engine = Engine(set())
    tag, built = cpimage.ensure(engine, print, cache=cache)  # type: ignore[arg-type]
    assert built and engine.built == [tag]
    calls = []
    monkeypatch.setattr(cpimage, "collect", lambda: calls.append(1))
    assert cpimage.ensure(engine, print, cache=cache) == (tag, False)  # type: ignore[arg-type]
    assert calls == []  # nothing read but the files' times
    monkeypatch.undo()
    engine.tags.clear()  # the image was removed: the cache is not trusted, the image is built again
    assert cpimage.ensure(engine, print, cache=cache) == (tag, True)  # type: ignore[arg-type]
    assert cpimage.ensure(Engine({tag}), print) == (tag, False)  # type: ignore[arg-type]


def test_the_signature_follows_each_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "mikro"
    package.mkdir()
    code = package / "controlplane.py"
    code.write_text("x = 1\n")
    (package / "__init__.py").write_text("")
    monkeypatch.setattr(mikro, "__file__", str(package / "__init__.py"))
    monkeypatch.setattr(ingress, "addons_root", lambda: tmp_path / "addons")
    first = cpimage.code_signature("sha256:base")
    assert cpimage.code_signature("sha256:base") == first
    assert cpimage.code_signature("sha256:other") != first
    code.write_text("x = 2\n")
    os.utime(code, ns=(1, 1))
    assert cpimage.code_signature("sha256:base") != first
    (package / "new.py").write_text("")
    second = cpimage.code_signature("sha256:base")
    (package / "new.py").unlink()
    assert second != cpimage.code_signature("sha256:base")
