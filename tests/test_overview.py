"""`mikro status --watch`'s model: workloads with their pods, Services, routes and last error."""

from __future__ import annotations

from typing import Any

from mikro.cli.overview import build, crash_looping, render


def meta(name: str, ns: str = "default", owner: tuple[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": ns, "creationTimestamp": "2026-11-27T08:00:00Z", **extra}
    if owner:
        m["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "controller": True}]
    return m


def pod(
    name: str,
    owner: tuple[str, str] | None,
    waiting: dict[str, str] | None = None,
    ready: bool = True,
    restarts: int = 0,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    state = {"waiting": waiting} if waiting else {"running": {"startedAt": "2026-11-27T08:00:01Z"}}
    return {
        "kind": "Pod",
        "metadata": meta(name, owner=owner, labels=labels or {"app": "web"}),
        "spec": {"containers": [{"name": "c"}]},
        "status": {
            "phase": "Running" if not waiting else "Pending",
            "conditions": [{"type": "Ready", "status": "True" if ready and not waiting else "False"}],
            "containerStatuses": [
                {
                    "name": "c",
                    "ready": ready and not waiting,
                    "restartCount": restarts,
                    "state": state,
                    "lastState": {"terminated": {"exitCode": 2}} if restarts else {},
                }
            ],
        },
    }


def stack() -> dict[str, list[dict[str, Any]]]:
    return {
        "Deployment": [
            {
                "kind": "Deployment",
                "metadata": meta("web"),
                "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}}},
                "status": {"readyReplicas": 1},
            }
        ],
        "ReplicaSet": [{"kind": "ReplicaSet", "metadata": meta("web-abc", owner=("Deployment", "web"))}],
        "Pod": [
            pod("web-abc-1", ("ReplicaSet", "web-abc")),
            pod("web-abc-2", ("ReplicaSet", "web-abc"), waiting={"reason": "CrashLoopBackOff"}, restarts=3),
            pod(
                "lonely",
                None,
                waiting={"reason": "ErrImagePull", "message": "pull access denied for nope"},
                labels={"run": "lonely"},
            ),
        ],
        "Service": [
            {"kind": "Service", "metadata": meta("web"), "spec": {"selector": {"app": "web"}}},
            {"kind": "Service", "metadata": meta("other"), "spec": {"selector": {"app": "other"}}},
        ],
        "Endpoints": [
            {
                "kind": "Endpoints",
                "metadata": meta("web"),
                "subsets": [{"addresses": [{"ip": "10.152.0.3"}], "ports": [{"port": 8080}]}],
            }
        ],
        "Ingress": [
            {
                "kind": "Ingress",
                "metadata": meta("web"),
                "spec": {
                    "rules": [
                        {
                            "http": {
                                "paths": [
                                    {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 8080}}}}
                                ]
                            }
                        }
                    ]
                },
            }
        ],
        "Event": [],
    }


def test_a_deployment_gathers_its_pods_service_route_and_crash_tail() -> None:
    rows = build(stack(), log_tails={"web-abc-2": "starting\npanic: no database\n"})
    web = next(r for r in rows if r.name == "web")
    assert (web.kind, web.ready) == ("Deployment", "1/2")
    assert [(p.name, p.status, p.restarts) for p in web.pods] == [
        ("web-abc-1", "Running", 0),
        ("web-abc-2", "CrashLoopBackOff", 3),
    ]
    assert web.services == ["web: 10.152.0.3:8080"]
    assert web.routes == ["http://localhost/ -> web:8080"]
    assert web.error == "web-abc-2: CrashLoopBackOff (exit code 2): panic: no database"


def test_a_bare_pod_is_its_own_workload_with_its_pull_error() -> None:
    lonely = next(r for r in build(stack()) if r.name == "lonely")
    assert (lonely.kind, lonely.ready, lonely.services) == ("Pod", "0/1", [])
    assert lonely.error == "lonely: ErrImagePull: pull access denied for nope"


def test_unschedulable_reason_comes_from_the_events() -> None:
    objects = stack()
    objects["Pod"] = [pod("web-abc-1", ("ReplicaSet", "web-abc"), ready=False)]
    objects["Event"] = [
        {
            "metadata": meta("e1"),
            "involvedObject": {"name": "web-abc-1"},
            "reason": "FailedScheduling",
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
            "lastTimestamp": "2026-11-27T08:00:02Z",
        }
    ]
    web = next(r for r in build(objects) if r.name == "web")
    assert web.error == "web-abc-1: FailedScheduling: 0/1 nodes are available: 1 Insufficient cpu."


def test_crash_looping_lists_what_needs_a_log_tail_and_render_names_every_workload() -> None:
    assert crash_looping(stack()) == [("default", "web-abc-2", "c", 3)]
    from rich.console import Console

    console = Console(width=200, record=True, color_system=None)
    console.print(render(build(stack()), "mikro"))
    text = console.export_text()
    assert "deployment/web  -n default  ready 1/2" in text and "pod/lonely" in text
    assert "  route http://localhost/ -> web:8080" in text and "  pod web-abc-2  CrashLoopBackOff  0/1  restarts 3" in text
