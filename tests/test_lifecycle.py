"""The Docker-supervised control plane's pure parts: its container's arguments as a function of
the settings, the image's fingerprint and contents; and the microk8s habits of `enable`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mikro.lifecycle import LifecycleError, container_spec, spec_hash
from mikro.node import cpimage
from mikro.node.docker_types import SupervisedContainer
from mikro.node.images import ImageError

from .test_cli import mikro

HOME = Path("/home/ada/.local/share/mikro")


def spec(**overrides: object) -> SupervisedContainer:
    args: dict[str, object] = {
        "cluster": "mikro",
        "state_dir": HOME,
        "image": "mikro/controlplane:0123456789ab",
        "docker_host": None,
        "uid": 0,
        "gid": 0,
        "socket_gid": 998,
        "log_level": None,
    }
    args.update(overrides)
    return container_spec(**args)  # type: ignore[arg-type]


def test_the_container_as_root() -> None:
    s = spec()
    assert s.name == "mikro-control-plane"
    assert s.restart_policy == "unless-stopped" and s.network_mode == "host" and s.pid_mode == "host"
    assert s.binds == {
        str(HOME): {"bind": str(HOME), "mode": "rw"},
        "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
        "/sys/fs/cgroup": {"bind": "/host/sys/fs/cgroup", "mode": "ro"},
    }
    assert s.env == {
        "MIKRO_HOME": str(HOME),
        "MIKRO_CLUSTER": "mikro",
        "MIKRO_CONTAINER": "mikro-control-plane",
        "MIKRO_CGROUP_ROOT": "/host/sys/fs/cgroup",
        "DOCKER_HOST": "unix:///var/run/docker.sock",
    }
    assert s.command == ["--log", f"{HOME}/controlplane.log"]
    assert s.labels == {"io.mikro/kind": "controlplane", "io.mikro/name": "control-plane"}
    assert s.user is None and s.group_add == []
    assert s.stop_timeout >= 30  # the pods stop first, each up to 10 s


def test_the_container_as_a_user_keeps_the_users_ownership() -> None:
    s = spec(uid=1000, gid=1000, log_level="DEBUG")
    assert s.user == "1000:1000" and s.group_add == ["998"]  # the socket's group
    assert s.env["MIKRO_LOG_LEVEL"] == "DEBUG"


@pytest.mark.parametrize(
    ("docker_host", "bind", "env"),
    [
        ("unix:///run/user/1000/docker.sock", "/run/user/1000/docker.sock", "unix:///run/user/1000/docker.sock"),
        ("tcp://127.0.0.1:2375", None, "tcp://127.0.0.1:2375"),
    ],
)
def test_the_engines_address(docker_host: str, bind: str | None, env: str) -> None:
    s = spec(docker_host=docker_host)
    assert s.env["DOCKER_HOST"] == env
    assert [b for b in s.binds if b not in (str(HOME), "/sys/fs/cgroup")] == ([bind] if bind else [])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cluster": "has space"}, "invalid cluster name 'has space'"),
        ({"cluster": "-x"}, "invalid cluster name '-x'"),
        ({"cluster": "x" * 51}, "at most 50 characters"),
        ({"state_dir": Path("relative/home")}, "must be an absolute path"),
        ({"state_dir": Path("/tmp/a:b")}, "without ':' or ','"),
        ({"docker_host": "unix://relative.sock"}, "the socket must be an absolute path"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(LifecycleError, match=message.replace("(", r"\(")):
        spec(**overrides)


def test_the_spec_hash_follows_every_argument() -> None:
    assert spec_hash(spec()) == spec_hash(spec())
    assert spec_hash(spec()) != spec_hash(spec(image="mikro/controlplane:ffffffffffff"))
    assert spec_hash(spec()) != spec_hash(spec(uid=1000, gid=1000))


def test_requirement_closure_follows_markers_not_extras() -> None:
    graph = {
        "mikro": None,
        "docker": ["requests>=2.26", "pywin32>=304; sys_platform == 'win32'", "paramiko; extra == 'ssh'"],
        "requests": ["urllib3<3,>=1.26", "idna", "Docker"],  # a cycle, spelled otherwise
        "urllib3": [],
        "idna": None,
        "jinja2": ["MarkupSafe>=2.0"],
        "markupsafe": [],
    }
    roots = ["docker>=7.0", "Jinja2>=3.1", "not a requirement ("]
    assert cpimage.requirement_closure(roots, graph.get) == [
        "docker",
        "jinja2",
        "requests",
        "markupsafe",
        "urllib3",
        "idna",
    ]


def test_the_dockerfile_checks_the_import_at_build_time() -> None:
    text = cpimage.dockerfile("mikro/python:3.11")
    assert text.startswith("FROM mikro/python:3.11\nCOPY lib /opt/mikro/lib\n")
    assert "import mikro.controlplane" in text and 'ENTRYPOINT ["python3", "-m", "mikro.controlplane"]' in text


def test_a_base_built_with_another_package_list_is_built_again() -> None:
    def inspect(packages: str | None) -> dict[str, Any]:
        return {"Config": {"Labels": {} if packages is None else {"io.mikro/packages": packages}}}

    assert cpimage.base_is_current(inspect("python3,libstdc++6"))
    assert not cpimage.base_is_current(inspect("python3"))  # before CEL rules needed re2
    assert not cpimage.base_is_current(inspect(None)) and not cpimage.base_is_current(None)


def test_a_python_without_a_debian_suite_is_named() -> None:
    assert cpimage.suite_for((3, 11)) == "bookworm" and cpimage.base_image((3, 11)) == "mikro/python:3.11"
    with pytest.raises(ImageError, match=r"mikro start --no-autostart"):
        cpimage.suite_for((3, 12))


def test_the_fingerprint_follows_mikros_code_and_the_dependencies(tmp_path: Path) -> None:
    code = tmp_path / "controlplane.py"
    code.write_text("print(1)\n")
    bundle = cpimage.Bundle(own={"mikro/controlplane.py": code}, versions={"click": "8.1"})
    first = bundle.fingerprint("sha256:base")
    assert bundle.fingerprint("sha256:base") == first
    assert bundle.fingerprint("sha256:other-base") != first
    code.write_text("print(2)\n")
    assert bundle.fingerprint("sha256:base") != first
    code.write_text("print(1)\n")
    bundle.versions["click"] = "8.2"
    assert bundle.fingerprint("sha256:base") != first


def test_the_bundle_holds_mikro_its_addons_and_its_dependencies() -> None:
    bundle = cpimage.collect()
    assert "mikro/controlplane.py" in bundle.own and "addons/ingress/nginx.conf.j2" in bundle.own
    assert not any("__pycache__" in arc or arc.endswith(".pyc") for arc in {**bundle.own, **bundle.deps})
    assert {"click", "docker", "pyyaml", "jinja2", "cryptography", "requests"} <= set(bundle.versions)
    assert "yaml/__init__.py" in bundle.deps and "docker/__init__.py" in bundle.deps


def test_enable_and_disable_dns_say_it_is_built_in(tmp_path: Path) -> None:
    enabled = mikro(tmp_path, "enable", "dns")
    assert enabled.returncode == 0 and enabled.stdout.startswith("Addon dns is enabled: DNS is built in and always on")
    disabled = mikro(tmp_path, "disable", "dns")
    assert disabled.returncode == 0 and disabled.stdout.startswith("Addon dns stays enabled: DNS is built in")
    unknown = mikro(tmp_path, "enable", "dns", "nope")
    assert unknown.returncode == 1 and unknown.stdout == ""  # nothing done before the bad name is refused
    assert unknown.stderr == "error: unknown addon 'nope'; known addons: dashboard, ingress, metrics-server, dns\n"
