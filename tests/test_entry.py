"""The entry point's click-free `kubectl get` (mikro.cli.entry): it takes only the forms click
reads the same way, and prints, words errors and exits exactly as the click command does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.cli import client as client_mod
from mikro.cli import entry, main
from mikro.controlplane import bootstrap
from tests.test_apiserver import TOKEN, PlainClient

DEFAULTS = {"namespace": "default", "all_namespaces": False, "selector": None, "field_selector": None,
            "output": None, "watch": False}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["pods"], {"targets": ["pods"]}),
        (["pods", "-A"], {"targets": ["pods"], "all_namespaces": True}),
        (["-n", "x", "po,svc", "web"], {"targets": ["po,svc", "web"], "namespace": "x"}),
        (["deploy", "--namespace=x", "--all-namespaces"], {"targets": ["deploy"], "namespace": "x",
                                                           "all_namespaces": True}),
        (["cm", "-l", "a=b", "--field-selector", "metadata.name=x"], {"targets": ["cm"], "selector": "a=b",
                                                                      "field_selector": "metadata.name=x"}),
        (["po", "-owide"], {"targets": ["po"], "output": "wide"}),
        (["po", "-o", "json", "--output=yaml"], {"targets": ["po"], "output": "yaml"}),
        ([], {"targets": []}),
        # left to click: its own spellings, flags not handled here, help, missing values
        (["po", "-o=json"], None),
        (["po", "-w"], None),
        (["po", "--help"], None),
        (["po", "-n"], None),
        (["po", "-An"], None),
        (["po", "--show-labels"], None),
        (["--", "po"], None),
    ],
)
def test_parse_get(args: list[str], expected: dict[str, Any] | None) -> None:
    assert entry.parse_get(args) == (None if expected is None else {**DEFAULTS, **expected})


@pytest.fixture()
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlainClient]:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    httpd = serve(registry, TOKEN, None)
    httpd.ready.set()
    plain = PlainClient("127.0.0.1", httpd.server_address[1], TOKEN)
    monkeypatch.setattr(client_mod.Client, "from_state", classmethod(lambda cls: plain))
    yield plain
    httpd.stopping.set()
    httpd.shutdown()


@pytest.mark.parametrize(
    "args",
    [
        ["ns"],
        ["ns", "-o", "name"],
        ["cm", "-A"],
        ["cm", "-n", "kube-system", "-ojson"],
        ["ns", "default", "-o", "yaml"],
        ["nosuch"],
        ["ns", "missing"],
        ["pods"],
        ["po", "-o", "table"],
        [],
    ],
)
def test_fast_get_prints_as_the_click_command(
    api: PlainClient, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    options = entry.parse_get(args)
    assert options is not None
    fast_code = entry._get(options)  # noqa: SLF001 - the fast path itself
    fast = capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main.kubectl_group.main(["get", *args], prog_name="mikro kubectl")
    slow = capsys.readouterr()
    assert (fast.out, fast.err, fast_code) == (slow.out, slow.err, exited.value.code or 0)


def test_not_running_is_worded_as_the_click_command(tmp_path: Path) -> None:
    env = {"MIKRO_HOME": str(tmp_path / "home"), "MIKRO_CLUSTER": "mkt-entry", "MIKRO_KUBECTL": "builtin",
           "PATH": "/usr/bin:/bin"}
    fast = subprocess.run([sys.executable, "-m", "mikro.cli", "kubectl", "get", "pods"], env=env,
                          capture_output=True, text=True, timeout=60)
    slow = subprocess.run([sys.executable, "-m", "mikro.cli", "kubectl", "get", "pods", "--field-selector"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert (fast.returncode, fast.stderr) == (1, f"error: {main.NOT_RUNNING_HINT}\n")
    assert slow.returncode == 2  # click's usage error: that form was left to click
    assert entry.NOT_RUNNING_HINT == main.NOT_RUNNING_HINT


APPLY_DEFAULTS = {"recursive": False, "namespace": "default", "wait": False, "timeout": 300.0, "validate": "strict"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-f", "a.yml"], {"files": ("a.yml",)}),
        (["-f", "-"], {"files": ("-",)}),
        (["--filename=a.yml", "-f", "b", "-R"], {"files": ("a.yml", "b"), "recursive": True}),
        (["-f", "d", "--recursive", "-n", "x", "--wait", "--timeout", "12.5"],
         {"files": ("d",), "recursive": True, "namespace": "x", "wait": True, "timeout": 12.5}),
        (["--namespace=x", "--filename", "a", "--timeout=3", "--validate=warn"],
         {"files": ("a",), "namespace": "x", "timeout": 3.0, "validate": "warn"}),
        (["-f", "a", "--validate", "false"], {"files": ("a",), "validate": "false"}),
        # left to click: no file, its own spellings, bad values, help, arguments, missing values
        ([], None),
        (["-fa.yml"], None),
        (["-f", "a", "--timeout", "soon"], None),
        (["-f", "a", "--validate", "Strict"], None),
        (["-f", "a", "--wait=true"], None),
        (["-f", "a", "--help"], None),
        (["-f", "a", "extra"], None),
        (["-f", "a", "-n"], None),
        (["--", "-f", "a"], None),
    ],
)
def test_parse_apply(args: list[str], expected: dict[str, Any] | None) -> None:
    options = entry.parse_apply(args)
    assert options == (None if expected is None else {**APPLY_DEFAULTS, **expected})
    if options is not None:  # what click makes of the same arguments
        assert main.main.commands["apply"].make_context("apply", list(args)).params == options


def apply_both_ways(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[tuple[str, str, int], ...]:
    """(out, err, exit code) of the entry's apply, then of the click command, on the same args."""
    runs = []
    with pytest.raises(SystemExit) as exited:
        entry._fast_apply(args)  # noqa: SLF001 - the fast path itself
    fast = capsys.readouterr()
    runs.append((fast.out, fast.err, exited.value.code or 0))
    with pytest.raises(SystemExit) as exited:
        main.main.main(["apply", *args], prog_name="mikro")
    slow = capsys.readouterr()
    runs.append((slow.out, slow.err, exited.value.code or 0))
    return tuple(runs)


def test_fast_apply_prints_and_exits_as_the_click_command(
    api: PlainClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yml"
    good.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fast\ndata:\n  a: '1'\n")
    with pytest.raises(SystemExit) as exited:
        entry._fast_apply(["-f", str(good)])  # noqa: SLF001
    assert (exited.value.code, capsys.readouterr().out) == (0, "configmap/fast created\n")
    assert api.get(BY_KIND["ConfigMap"], "default", "fast")["data"] == {"a": "1"}
    fast, slow = apply_both_ways(["-f", str(good)], capsys)
    assert fast == slow == ("configmap/fast unchanged\n", "", 0)
    bad = tmp_path / "bad.yml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n")
    for args in (["-f", str(bad)], ["-f", str(tmp_path / "missing.yml")], ["-f", str(good), "-n", "nosuch"]):
        fast, slow = apply_both_ways(args, capsys)
        assert fast == slow
        assert fast[2] == 1 and fast[1].startswith("error: ")
