"""`mikro inspect`'s pure parts: what is redacted and what counts as a problem."""

from __future__ import annotations

import json

from mikro.cli.inspect import REDACTED, Facts, latest_runs, problems, redact

GIB = 1 << 30


def test_a_secret_keeps_its_keys_but_not_its_values() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {
            "name": "db",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"stringData":{"pw":"hunter2"}}'},
        },
        "data": {"pw": "aHVudGVyMg=="},
        "stringData": {"user": "admin"},
    }
    out = redact(secret)
    assert out["data"] == {"pw": REDACTED} and out["stringData"] == {"user": REDACTED}
    assert "hunter2" not in json.dumps(out) and "aHVudGVyMg" not in json.dumps(out)
    assert secret["data"] == {"pw": "aHVudGVyMg=="}  # the caller's object is untouched
    config_map = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    assert redact(config_map) == config_map


def container(name: str, state: str, status: str, **labels: str) -> dict[str, object]:
    return {
        "Names": [f"/{name}"],
        "State": state,
        "Status": status,
        "Labels": {f"io.mikro/{k}": v for k, v in labels.items()},
    }


def test_only_the_last_run_of_a_pod_container_counts() -> None:
    old = container("web_1", "exited", "Exited (1) 2 minutes ago", uid="u", container="web", attempt="1")
    new = container("web_2", "running", "Up 1 minute", uid="u", container="web", attempt="2")
    proxy = container("proxy", "running", "Up", kind="proxy")
    assert latest_runs([old, new, proxy]) == [proxy, new]
    facts = Facts(
        running=True,
        containers=[old, new],
        images_present={"mikro/pause:1", "mikro/nginx:1.22"},
        disk_free=100 * GIB,
        disk_total=200 * GIB,
    )
    assert problems(facts) == []


def test_problems_name_what_a_user_can_act_on() -> None:
    crashed = container("db_3", "exited", "Exited (2) 5 seconds ago", uid="d", container="db", attempt="3")
    facts = Facts(
        running=False,
        containers=[crashed],
        images_present={"mikro/pause:1"},
        disk_free=GIB // 2,
        disk_total=100 * GIB,
        ports_taken=[80],
    )
    assert problems(facts) == [
        "the control plane is not running (mikro start)",
        "image mikro/nginx:1.22 is missing (mikro images prepare)",
        "host port 80 is taken by another program (the ingress cannot bind it)",
        "the disk of the state directory is almost full (512 MiB free)",
    ]
    facts.running = True
    assert "container db_3 exited: Exited (2) 5 seconds ago" in problems(facts)
    assert problems(Facts(running=True, docker_error="refused", disk_free=GIB * 9, disk_total=GIB * 10)) == [
        "Docker does not answer: refused"
    ]
