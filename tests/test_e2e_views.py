"""The views against real Docker: `mikro status --watch` live in a terminal (tmux) and piped."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import pytest

from .conftest import ROOT, Mikro, wait_for

pytestmark = pytest.mark.docker

CRASHER = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: crasher}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: crasher}}}}
  template:
    metadata: {{labels: {{app: crasher}}}}
    spec:
      containers:
      - name: main
        image: hello-ip:1
        command: ["sh", "-c", "echo starting; echo {marker}; exit 2"]
"""


def test_status_watch_shows_the_crash_log_line_live_and_quits_on_ctrl_c(mikro: Mikro) -> None:
    assert shutil.which("tmux"), ".ci/run installs tmux"
    marker = "boom-" + uuid.uuid4().hex[:8]
    session = "mikro-views-" + uuid.uuid4().hex[:6]
    env = " ".join(f"{k}={v}" for k, v in (("MIKRO_HOME", mikro.home), ("MIKRO_CLUSTER", mikro.cluster)))
    command = f"cd {ROOT} && env {env} {sys.executable} -m mikro.cli status --watch; echo exited=$?; sleep 60"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "220", "-y", "50", command], check=True)

    def screen() -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    try:
        wait_for(lambda: "mikro (" in screen(), 30, what="the live view")
        mikro.run("apply", "-f", "-", input=CRASHER.format(marker=marker))
        # The view redraws from its watches: the crash loop's last log line appears without a key press.
        wait_for(lambda: marker in screen(), 90, what="the crash log line in the view")
        assert "deployment/crasher" in screen() and "CrashLoopBackOff" in screen()
        subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
        wait_for(lambda: "exited=0" in screen(), 15, what="a clean exit on Ctrl-C")
        assert "Traceback" not in screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        mikro.run("delete", "deployment", "crasher", check=False)


def test_status_watch_piped_prints_one_snapshot(mikro: Mikro) -> None:
    mikro.run("apply", "-f", str(ROOT / "examples" / "stack-offline.yml"), "--wait", timeout=180)
    try:
        out = mikro.run("status", "--watch").stdout
        assert "deployment/mon-app-deployment  -n default  ready 2/2" in out
        assert "  service mon-app-service: 10." in out and "  route http://localhost/ -> mon-app-service:8080" in out
        assert "\x1b[" not in out  # no colour codes when piped
    finally:
        mikro.run("delete", "-f", str(ROOT / "examples" / "stack-offline.yml"), check=False)
