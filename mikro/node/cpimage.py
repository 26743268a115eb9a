"""The control plane's own image, built offline: the cluster's supervisor is the Docker engine.

The image is Debian's `python3` of the same minor version as the Python that runs `mikro`
(so that compiled extensions carry over: same CPython ABI), plus the very files of mikro and
of its dependencies that this Python imports, copied from the host's installation. No registry
and no package index is needed, and the container runs exactly the code the `mikro` command
runs. The tag is a fingerprint of that code (mikro's files, its dependencies' versions, the
base image): `mikro start` builds a new image only when one of those changed.

- `mikro/python:3.X`: mmdebstrap of the Debian suite whose python3 is 3.X (about a minute,
  once; `mikro images prepare` makes it);
- `mikro/controlplane:<fingerprint>`: that base plus `/opt/mikro/lib` (seconds).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import sys
import tarfile
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mikro.node.docker_backend import Docker
    from mikro.node.images import Progress

# mikro.node.images (and the Docker SDK it imports: 0.25 s of CPU) is imported by the functions
# that build: `current_tag`, `mikro start`'s common path, needs neither.

IMAGE_REPO = "mikro/controlplane"
LIB = "/opt/mikro/lib"
# Debian suites by the minor version of their python3.
PYTHON_SUITES = {(3, 9): "bullseye", (3, 11): "bookworm", (3, 13): "trixie"}
SKIPPED_PARTS = {"__pycache__"}
# Debian packages of the base: python3, and libstdc++6 for the compiled C++ of google-re2
# (the regex engine of cel-python, which evaluates CRDs' CEL rules). Recorded in a label, so
# that a base built with another list is built again.
BASE_PACKAGES = ("python3", "libstdc++6")
PACKAGES_LABEL = "io.mikro/packages"


def python_version() -> tuple[int, int]:
    return sys.version_info.major, sys.version_info.minor


def base_image(version: tuple[int, int]) -> str:
    return f"mikro/python:{version[0]}.{version[1]}"


def suite_for(version: tuple[int, int]) -> str:
    try:
        return PYTHON_SUITES[version]
    except KeyError:
        from mikro.node.images import ImageError

        known = ", ".join(f"{v[0]}.{v[1]} ({s})" for v, s in sorted(PYTHON_SUITES.items()))
        raise ImageError(
            f"the control plane's image needs the Python that runs mikro ({version[0]}.{version[1]}) from a "
            f"Debian suite, and Debian ships only {known}; run mikro with one of those, or start the "
            "cluster with `mikro start --no-autostart` (it then does not come back after a reboot)"
        ) from None


def requirement_closure(roots: Iterable[str], requires: Callable[[str], list[str] | None]) -> list[str]:
    """The distributions `roots` need, transitively, without extras and with markers evaluated
    for this interpreter; `requires(name)` gives a distribution's requirement strings."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    seen: dict[str, None] = {}
    pending = list(roots)
    while pending:
        text = pending.pop(0)
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen[name] = None
        pending.extend(requires(name) or [])
    return list(seen)


def dockerfile(base: str) -> str:
    """The layer on top of the base: mikro's files, compiled once, checked by importing the
    control plane (an incompatible extension module fails the build, not the first boot)."""
    return (
        f"FROM {base}\n"
        f"COPY lib {LIB}\n"
        f"ENV PYTHONPATH={LIB} PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1\n"
        'RUN ["python3", "-c", "import compileall; compileall.compile_dir(\'' + LIB + "', quiet=2); "
        'import mikro.controlplane, cryptography.hazmat.bindings._rust, yaml, celpy, h2.connection"]\n'
        'ENTRYPOINT ["python3", "-m", "mikro.controlplane"]\n'
    )


@dataclass
class Bundle:
    """What goes into /opt/mikro/lib: archive path -> source file, and what identifies it."""

    own: dict[str, Path] = field(default_factory=dict)  # mikro's files: hashed by content
    deps: dict[str, Path] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # dependency -> version

    def fingerprint(self, base_id: str) -> str:
        digest = hashlib.sha256()
        digest.update(f"{base_id}\n{python_version()}\n".encode())
        for name, version in sorted(self.versions.items()):
            digest.update(f"{name}=={version}\n".encode())
        for arc, path in sorted(self.own.items()):
            digest.update(arc.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def context(self, base: str) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = dockerfile(base).encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            for arc, path in sorted({**self.deps, **self.own}.items()):
                tar.add(path, f"lib/{arc}", recursive=False, filter=_plain)
        return buf.getvalue()


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


def _files_under(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not SKIPPED_PARTS & set(path.relative_to(root).parts) and path.suffix != ".pyc":
            yield path


def source_requirements(package_dir: Path) -> list[str]:
    """mikro's requirements: from the source tree's pyproject.toml when mikro runs from one
    (a checkout may require more than what was installed from it), else its metadata."""
    pyproject = package_dir.parent / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text()).get("project") or {}
        if project.get("name") == "mikro":
            return list(project.get("dependencies") or [])
    return importlib.metadata.requires("mikro") or []


def collect() -> Bundle:
    import mikro
    from mikro.net.ingress import addons_root
    from mikro.node.images import ImageError

    package_dir = Path(mikro.__file__).resolve().parent
    bundle = Bundle()
    for path in _files_under(package_dir):
        bundle.own[f"mikro/{path.relative_to(package_dir).as_posix()}"] = path
    addons = addons_root().resolve()
    if package_dir not in addons.parents:  # a source tree: addons/ beside the package
        for path in _files_under(addons):
            bundle.own[f"addons/{path.relative_to(addons).as_posix()}"] = path

    def requires(name: str) -> list[str] | None:
        try:
            return importlib.metadata.requires(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    for name in requirement_closure(source_requirements(package_dir), requires):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ImageError(f"mikro needs {name}, which this Python does not have: pip install {name}") from None
        bundle.versions[name] = dist.version
        for rel in dist.files or []:
            if rel.parts[0] == ".." or SKIPPED_PARTS & set(rel.parts) or rel.suffix == ".pyc":
                continue
            path = Path(str(dist.locate_file(rel)))
            if path.is_file():
                bundle.deps[rel.as_posix()] = path
    return bundle


def build_base(docker: Docker, progress: Progress, version: tuple[int, int]) -> None:
    from mikro.node.images import debian_image

    suite, tag = suite_for(version), base_image(version)
    progress(f"building {tag} from Debian {suite} packages with mmdebstrap (about a minute, once)")
    debian_image(
        docker,
        suite,
        list(BASE_PACKAGES),
        tag,
        [f"LABEL io.mikro/image=python{version[0]}.{version[1]}", f"LABEL {PACKAGES_LABEL}={','.join(BASE_PACKAGES)}"],
    )


def base_is_current(info: dict[str, Any] | None) -> bool:
    """Whether a base image (its inspect data) holds today's package list."""
    labels = ((info or {}).get("Config") or {}).get("Labels") or {}
    return info is not None and labels.get(PACKAGES_LABEL) == ",".join(BASE_PACKAGES)


def code_signature(base_id: str) -> str:
    """A cheap stand-in for the fingerprint: the name, size and modification time of each of
    mikro's files and the names (versions) and times of the installed distributions. Same
    signature, same code: `ensure` then reuses the fingerprint it computed last time instead of
    reading every file and every distribution's metadata again (0.9 s of `mikro start`)."""
    import mikro
    from mikro.net.ingress import addons_root

    package_dir = Path(mikro.__file__).resolve().parent
    digest = hashlib.sha256(f"{base_id}\n{sys.version}\n{sys.executable}\n".encode())
    roots = [package_dir, addons_root().resolve(), package_dir.parent / "pyproject.toml"]
    for root in roots:
        for path in [root] if root.is_file() else _files_under(root) if root.is_dir() else []:
            st = path.stat()
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for entry in sorted({os.path.abspath(e or ".") for e in sys.path}):
        try:
            names = sorted(os.listdir(entry))
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info", ".pth")):
                try:
                    mtime = os.stat(os.path.join(entry, name)).st_mtime_ns
                except OSError:
                    continue
                digest.update(f"{entry}/{name}\0{mtime}\n".encode())
    return digest.hexdigest()


CACHE_ENTRIES = 8  # signatures remembered (checkouts, versions)


def default_cache() -> Path:
    """The user's cache, not a cluster's state directory: `mikro reset` keeps it, and every
    cluster of the same code shares it."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "mikro" / "controlplane-images.json"


def _read_cache(cache: Path | None) -> dict[str, str]:
    """signature -> tag."""
    if cache is None:
        return {}
    try:
        data = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def current_tag(docker: Any, cache: Path) -> str | None:
    """The image `ensure` would return without building anything, when the cache knows it for
    the code that runs now and it exists; None otherwise (`ensure` then decides). `docker`
    needs only `image(ref)`: `mikro start` asks over the engine's socket, without the SDK."""
    base_info = docker.image(base_image(python_version()))
    if not base_is_current(base_info):
        return None
    tag = _read_cache(cache).get(code_signature(str((base_info or {}).get("Id", ""))))
    return tag if tag and docker.image(tag) is not None else None


def ensure(docker: Docker, progress: Progress, force: bool = False, cache: Path | None = None) -> tuple[str, bool]:
    """The control plane's image for the code that runs now: (its tag, whether it was built).
    `cache`: a file remembering the tag of the last code signature (see `code_signature`)."""
    from mikro.node.images import ImageError

    version = python_version()
    base = base_image(version)
    if force or not base_is_current(docker.image(base)):
        build_base(docker, progress, version)
    base_info = docker.image(base) or {}
    base_id = str(base_info.get("Id", ""))
    signature = code_signature(base_id) if cache is not None else ""
    remembered = _read_cache(cache)
    if not force and remembered.get(signature):
        if docker.image(remembered[signature]) is not None:
            return remembered[signature], False
    bundle = collect()
    tag = f"{IMAGE_REPO}:{bundle.fingerprint(base_id)[:12]}"
    if docker.image(tag) is None or force:
        progress(f"building {tag} (mikro {_mikro_version()}, {len(bundle.versions)} dependencies, from this host)")
        try:
            docker.build(bundle.context(base), tag, {"io.mikro/image": "controlplane"})
        except Exception as exc:  # noqa: BLE001 - the build's message is what the user needs
            raise ImageError(f"building {tag} failed: {exc}") from None
        for image in docker.images(label="io.mikro/image=controlplane"):
            for old in image.get("RepoTags") or []:
                if old.startswith(f"{IMAGE_REPO}:") and old != tag:
                    docker.remove_unused_image(old)  # an older mikro's; kept while a container uses it
        built = True
    else:
        built = False
    if cache is not None:
        remembered.pop(signature, None)
        entries = [*list(remembered.items())[-(CACHE_ENTRIES - 1) :], (signature, tag)]
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(dict(entries)))
            os.replace(tmp, cache)
        except OSError:
            pass  # only a cache
    return tag, built


def _mikro_version() -> str:
    import mikro

    return mikro.__version__
