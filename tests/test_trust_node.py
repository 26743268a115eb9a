"""The node's side of issue 11: volume paths that cannot leave their directory (item 4) and
security contexts turned into Docker settings (item 11). Pure, no Docker."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest

from mikro.node.podplan import (
    PodContext,
    Security,
    SecurityRefused,
    UnsafePath,
    app_spec,
    contained,
    infra_spec,
    security,
)

CTX = PodContext("mikro", "mikro", "mikro/pause:1", "mikro", "10.152.0.1", "/tmp/mikro")
POD: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "default", "uid": "1234-5678"},
    "spec": {"containers": [{"name": "app", "image": "hello-ip:1"}]},
}


def with_security(pod_sc: dict[str, Any] | None = None, ctr_sc: dict[str, Any] | None = None, **spec: Any):
    pod = copy.deepcopy(POD)
    if pod_sc is not None:
        pod["spec"]["securityContext"] = pod_sc
    if ctr_sc is not None:
        pod["spec"]["containers"][0]["securityContext"] = ctr_sc
    pod["spec"].update(spec)
    return pod, pod["spec"]["containers"][0]


# -- paths ---------------------------------------------------------------------------------------


def test_contained_paths(tmp_path: Path) -> None:
    base = tmp_path / "vol"
    base.mkdir()
    assert contained(str(base), "a/b.conf", "volume file") == str(base / "a" / "b.conf")
    for bad in ("../../../../tmp/x", "/tmp/x", "a/../../x", "", "a\x00b"):
        with pytest.raises(UnsafePath):
            contained(str(base), bad, "volume file")


def test_a_symbolic_link_cannot_lead_out(tmp_path: Path) -> None:
    base = tmp_path / "vol"
    base.mkdir()
    os.symlink(tmp_path, base / "up")
    with pytest.raises(UnsafePath, match="must not leave its volume"):
        contained(str(base), "up/secret", "subPath")


# -- security contexts ---------------------------------------------------------------------------


def test_ids_groups_and_switches() -> None:
    pod, ctr = with_security(
        {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000]},
        {
            "runAsUser": 1001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
        },
        hostPID=True,
    )
    sec, warnings = security(pod, ctr, "")
    assert sec == Security(
        user="1001:3000",
        group_add=("2000", "4000"),
        read_only=True,
        cap_add=("NET_ADMIN",),
        cap_drop=("ALL",),
        no_new_privileges=True,
        host_pid=True,
    )
    spec = app_spec(CTX, pod, ctr, "infra", 0, {}, {}, sec)
    assert spec.user == "1001:3000" and spec.group_add == ["2000", "4000"] and spec.read_only
    assert spec.cap_add == ["NET_ADMIN"] and spec.cap_drop == ["ALL"]
    assert spec.security_opt == ["no-new-privileges"] and spec.pid_mode == "host"
    assert warnings == ["pod securityContext.fsGroup: volumes keep their ownership; the group is added to the process"]


def test_privileged() -> None:
    pod, ctr = with_security(None, {"privileged": True})
    sec, _ = security(pod, ctr, "")
    assert app_spec(CTX, pod, ctr, "infra", 0, {}, {}, sec).privileged


@pytest.mark.parametrize(
    ("image_user", "ctr_sc", "message"),
    [
        ("", {}, "container has runAsNonRoot and image will run as root"),
        ("0:0", {}, "container has runAsNonRoot and image will run as root"),
        ("1000", {"runAsUser": 0}, "container's runAsUser breaks non-root policy"),
        (
            "nginx",
            {},
            "container has runAsNonRoot and image has non-numeric user (nginx), cannot verify user is non-root",
        ),
    ],
)
def test_run_as_non_root_refuses_root(image_user: str, ctr_sc: dict[str, Any], message: str) -> None:
    pod, ctr = with_security({"runAsNonRoot": True}, ctr_sc)
    with pytest.raises(SecurityRefused) as err:
        security(pod, ctr, image_user)
    assert str(err.value) == f'{message} (pod: "web_default(1234-5678)", container: app)'


@pytest.mark.parametrize(("image_user", "ctr_sc"), [("1000", {}), ("", {"runAsUser": 1000}), ("0", {"runAsUser": 7})])
def test_run_as_non_root_allows_non_root(image_user: str, ctr_sc: dict[str, Any]) -> None:
    pod, ctr = with_security({"runAsNonRoot": True}, ctr_sc)
    security(pod, ctr, image_user)


def test_group_without_user_keeps_the_image_user() -> None:
    pod, ctr = with_security({"runAsGroup": 50})
    assert security(pod, ctr, "app")[0].user == "app:50"


def test_unsupported_fields_are_warned() -> None:
    pod, ctr = with_security(
        {"seLinuxOptions": {"level": "s0"}, "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
        {"seccompProfile": {"type": "RuntimeDefault"}, "appArmorProfile": {"type": "RuntimeDefault"}},
    )
    _, warnings = security(pod, ctr, "")
    assert warnings == [
        "pod securityContext.seLinuxOptions is not supported by mikro's Docker runtime and is ignored",
        "pod securityContext.sysctls is not supported by mikro's Docker runtime and is ignored",
        "container app: securityContext.seccompProfile is not supported by mikro's Docker runtime and is ignored",
        "container app: securityContext.appArmorProfile is not supported by mikro's Docker runtime and is ignored",
    ]


def test_host_network_infra() -> None:
    pod, _ = with_security(hostNetwork=True)
    spec = infra_spec(CTX, pod, ["x.default"])
    assert spec.network_mode == "host" and spec.network is None and not spec.dns_search and not spec.ports
    assert spec.command is None  # (no address of its own to announce: the host's eth0 is not its)


def test_hash_of_a_plain_container_did_not_move() -> None:
    """Containers created before the security fields existed are not recreated: the hashes
    are those the previous code computed for the same pod."""
    pod, ctr = with_security(None, {"runAsUser": 5})
    sec, _ = security(pod, ctr, "")
    assert app_spec(CTX, pod, ctr, "infra", 0, {}, {}, sec).labels["io.mikro/spec-hash"] == "7feadfcf160db60f"
    assert infra_spec(CTX, pod, []).labels["io.mikro/spec-hash"] == "0898006bd8fbc1f9"
    pod, ctr = with_security(None, {"runAsUser": 5, "privileged": True})
    sec, _ = security(pod, ctr, "")
    assert app_spec(CTX, pod, ctr, "infra", 0, {}, {}, sec).labels["io.mikro/spec-hash"] != "7feadfcf160db60f"
