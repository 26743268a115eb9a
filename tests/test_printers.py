"""kubectl's columns and status words."""

from __future__ import annotations

from typing import Any

import pytest

from mikro.cli.printers import format_table, human_duration, pod_status, rows


@pytest.mark.parametrize(
    "seconds,text",
    [
        (0, "0s"),
        (59, "59s"),
        (119, "119s"),
        (131, "2m11s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (5 * 86400 + 7 * 3600, "5d7h"),
        (30 * 86400, "30d"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def pod(state: dict[str, Any], restarts: int = 0, phase: str = "Running", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", **meta},
        "spec": {"containers": [{"name": "c"}]},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "c", "state": state, "ready": "running" in state, "restartCount": restarts}],
        },
    }


@pytest.mark.parametrize(
    "state,status",
    [
        ({"running": {}}, "Running"),
        ({"waiting": {"reason": "ContainerCreating"}}, "ContainerCreating"),
        ({"waiting": {"reason": "CrashLoopBackOff"}}, "CrashLoopBackOff"),
        ({"waiting": {"reason": "ImagePullBackOff"}}, "ImagePullBackOff"),
        ({"terminated": {"reason": "Completed", "exitCode": 0}}, "Completed"),
        ({"terminated": {"reason": "Error", "exitCode": 1}}, "Error"),
    ],
)
def test_pod_status_words(state: dict[str, Any], status: str) -> None:
    assert pod_status(pod(state))[0] == status


def test_terminating_and_pending() -> None:
    assert pod_status(pod({"running": {}}, deletionTimestamp="2026-01-01T00:00:00Z"))[0] == "Terminating"
    assert pod_status({"metadata": {}, "spec": {"containers": [{}]}, "status": {"phase": "Pending"}})[0] == "Pending"


def test_pod_row() -> None:
    headers, body = rows("Pod", [pod({"running": {}}, restarts=2)], wide=False)
    assert headers == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert body[0][:4] == ["p", "1/1", "Running", "2"]


def test_service_row() -> None:
    svc = {
        "metadata": {"name": "s"},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.152.183.5",
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
        },
    }
    headers, body = rows("Service", [svc], wide=False)
    assert headers == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert body[0][:5] == ["s", "NodePort", "10.152.183.5", "<none>", "80:30080/TCP"]


def test_format_table_pads_like_tabwriter() -> None:
    assert format_table(["NAME", "READY"], [["web", "2/2"], ["a-long-name", "0/1"]]).splitlines() == [
        "NAME          READY",
        "web           2/2",
        "a-long-name   0/1",
    ]
