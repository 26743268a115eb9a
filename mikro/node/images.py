"""The images mikro itself needs, made available without any registry.

- the infra (pause) image: built from scratch with the host's static busybox;
- the NGINX image (service proxies, ingress): built from a Debian base image when a registry
  answers, otherwise from the host's Debian package mirror with mmdebstrap, loaded with
  `docker import`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path

from mikro.config import INFRA_IMAGE, NGINX_IMAGE
from mikro.node.docker_backend import Docker, DockerError

NGINX_PACKAGES = ["nginx", "libnginx-mod-stream", "openssl", "ca-certificates"]
DEFAULT_CERT_COMMAND = (
    "mkdir -p /etc/ssl/mikro && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 "
    "-subj /CN=mikro-ingress-default -keyout /etc/ssl/mikro/default.key "
    "-out /etc/ssl/mikro/default.crt 2>/dev/null"
)
INFRA_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
"""
Progress = Callable[[str], None]


class ImageError(Exception):
    pass


def is_static_elf(path: Path) -> bool:
    """An ELF executable without a PT_INTERP program header needs no dynamic loader."""
    with path.open("rb") as fh:
        header = fh.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
            return False
        order = "little" if header[5] == 1 else "big"
        phoff = int.from_bytes(header[32:40], order)
        phentsize = int.from_bytes(header[54:56], order)
        phnum = int.from_bytes(header[56:58], order)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    return all(int.from_bytes(table[i : i + 4], order) != 3 for i in range(0, len(table), phentsize))


def static_busybox() -> Path:
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and Path(candidate).exists() and is_static_elf(Path(candidate).resolve()):
            return Path(candidate)
    raise ImageError(
        "a static busybox is needed to build the infra image: install Debian's busybox-static "
        "(apt-get install busybox-static)"
    )


def context_tar(files: dict[str, bytes], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = (modes or {}).get(name, 0o644)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_infra(docker: Docker, progress: Progress) -> None:
    progress(f"building {INFRA_IMAGE} from the host's static busybox")
    busybox = static_busybox().read_bytes()
    docker.build(
        context_tar({"Dockerfile": INFRA_DOCKERFILE.encode(), "busybox": busybox}, {"busybox": 0o755}),
        INFRA_IMAGE,
        {"io.mikro/image": "infra"},
    )


def debian_suite() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip('"') or "bookworm"
    except OSError:
        pass
    return "bookworm"


def _try_pull(docker: Docker, ref: str, seconds: float) -> bool:
    result: list[bool] = []

    def pull() -> None:
        try:
            docker.pull(ref)
            result.append(True)
        except DockerError:
            result.append(False)

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(result and result[0])


def build_nginx(docker: Docker, progress: Progress) -> None:
    suite = debian_suite()
    base = f"debian:{suite}-slim"
    progress(f"trying to pull {base} to build {NGINX_IMAGE}")
    if _try_pull(docker, base, 20):
        dockerfile = (
            f"FROM {base}\nRUN apt-get update && apt-get install -y --no-install-recommends "
            f"{' '.join(NGINX_PACKAGES)} && rm -rf /var/lib/apt/lists/* && {DEFAULT_CERT_COMMAND}\n"
            'CMD ["nginx", "-g", "daemon off;"]\n'
        )
        docker.build(context_tar({"Dockerfile": dockerfile.encode()}), NGINX_IMAGE, {"io.mikro/image": "nginx"})
        return
    progress(f"no registry: building {NGINX_IMAGE} from Debian {suite} packages with mmdebstrap (about a minute)")
    debian_image(
        docker,
        suite,
        NGINX_PACKAGES,
        NGINX_IMAGE,
        ['CMD ["nginx", "-g", "daemon off;"]', "LABEL io.mikro/image=nginx"],
        [f"chroot \"$1\" sh -c '{DEFAULT_CERT_COMMAND}'"],
    )


def debian_image(
    docker: Docker, suite: str, packages: list[str], tag: str, changes: list[str], hooks: list[str] | None = None
) -> None:
    """Build an image from Debian's packages with mmdebstrap (no registry needed): a minimal
    system of `suite` with `packages`, loaded with `docker import`."""
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ImageError(
            f"no registry answers and mmdebstrap is missing: install it (apt-get install mmdebstrap) "
            f"to build {tag} from Debian's packages"
        )
    cmd = [
        mmdebstrap,
        "--quiet",
        "--variant=essential",
        f"--include={','.join(packages)}",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        *[f"--customize-hook={hook}" for hook in hooks or []],
        suite,
        "-",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        docker.import_image(proc.stdout, tag, changes)
    finally:
        _, err = proc.communicate()
    if proc.returncode != 0 or docker.image(tag) is None:
        raise ImageError(f"mmdebstrap failed (exit {proc.returncode}): {err.decode(errors='replace')[-800:]}")


def prepare(docker: Docker, progress: Progress, force: bool = False) -> list[str]:
    """Make every image mikro needs present; return the ones that were built."""
    built = []
    for image, builder in ((INFRA_IMAGE, build_infra), (NGINX_IMAGE, build_nginx)):
        if docker.image(image) is not None and not force:
            progress(f"{image}: present")
            continue
        builder(docker, progress)
        progress(f"{image}: ready")
        built.append(image)
    from mikro.node import cpimage  # it builds on this module's helpers

    tag, was_built = cpimage.ensure(docker, progress, force)
    progress(f"{tag}: {'ready' if was_built else 'present'} (the control plane's image)")
    if was_built:
        built.append(tag)
    return built
