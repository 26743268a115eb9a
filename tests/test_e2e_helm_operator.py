"""A chart shaped like an operator's (issue 10): a CRD in crds/, RBAC for a ServiceAccount, a
custom resource, and a Deployment that reads a ConfigMap through the API from inside with its
mounted token. Helm 3 installs it with --wait, it works, and it uninstalls cleanly (real Docker)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT, Mikro, wait_for

pytestmark = pytest.mark.docker
CHART = ROOT / "tests" / "fixtures" / "charts" / "reader"


def test_operator_chart_installs_works_and_uninstalls(mikro: Mikro, tmp_path: Path) -> None:
    from tools.fetch_helm import fetch

    helm_binary = os.environ.get("MIKRO_HELM") or str(fetch())
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(mikro.run("config").stdout)
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }

    def helm(*args: str) -> str:
        done = subprocess.run([helm_binary, *args], env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, f"helm {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    installed = helm("install", "reader", str(CHART), "--wait", "--timeout", "180s")
    assert "STATUS: deployed" in installed
    gizmo = mikro.json("gizmos.reader.example.com", "reader-gizmo")
    assert gizmo["spec"] == {"size": 3}

    def greeting() -> bool:
        pods = mikro.pods("app=reader")
        if not pods:
            return False
        logs = mikro.kubectl("logs", pods[0]["metadata"]["name"], check=False).stdout
        return "greeting=hello-from-configmap" in logs

    # The pod reads its ConfigMap through https://kubernetes.default.svc with its token, as RBAC allows.
    wait_for(greeting, 120, interval=2, what="the pod reading its ConfigMap through the API")

    def can_i(*args: str) -> str:
        done = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(kubeconfig),
                "auth",
                "can-i",
                *args,
                "--as=system:serviceaccount:default:reader",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.stdout.strip()

    assert can_i("get", "configmap/reader-settings") == "yes"
    assert can_i("get", "secrets") == "no"  # the Role grants one ConfigMap, nothing else

    assert helm("uninstall", "reader").strip() == 'release "reader" uninstalled'
    for kind, name in (
        ("deployment", "reader"),
        ("role", "reader-read-settings"),
        ("rolebinding", "reader-read-settings"),
        ("serviceaccount", "reader"),
        ("configmap", "reader-settings"),
    ):
        wait_for(
            lambda k=kind, n=name: mikro.kubectl("get", k, n, check=False).returncode == 1,
            60,
            what=f"{kind} {name} gone",
        )
    crds = json.loads(mikro.kubectl("get", "crd", "-o", "json").stdout)["items"]
    assert [c["metadata"]["name"] for c in crds] == ["gizmos.reader.example.com"]  # Helm keeps crds/ on uninstall
    mikro.kubectl("delete", "crd", "gizmos.reader.example.com")
