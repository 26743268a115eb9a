"""The Endpoints fast path (a pod's readiness on its way to the proxies) writes what the full
controller pass writes, for the Services the changed pods concern, and nothing for others."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mikro.api.resources import BY_KIND
from mikro.controllers.endpoints import EndpointsFastPath

from .controller_kit import Cluster

EP, SVC, DEPLOY = BY_KIND["Endpoints"], BY_KIND["Service"], BY_KIND["Deployment"]


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "hello-ip:1", "ports": [{"containerPort": 8080}]}]},
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def fast_path(c: Cluster) -> EndpointsFastPath:
    return EndpointsFastPath(c.store, c.api, threading.Lock(), c.clock, threading.Event())


def test_the_fast_path_writes_what_the_full_pass_writes(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    for name in ("web", "api"):
        c.reg.create(DEPLOY, "default", deployment(name, 2))
        c.reg.create(SVC, "default", service(name))
    for _ in range(4):
        c.sync()
    c.start_all(ready=False)
    c.sync()
    fast = fast_path(c)
    c.store.watch(lambda change: fast._on_change(change))
    for pod in sorted(p["metadata"]["name"] for p in c.pods() if p["metadata"]["labels"]["app"] == "web"):
        c.set_pod(pod, ready=True)
    c.api.take()
    fast.sync(fast.changed, fast.services_changed)
    # Only the Service the changed pods concern is written, with both pods ready now.
    assert c.api.take() == [("update", "Endpoints", "web")]
    web = c.store.get(EP, "default", "web")["subsets"][0]
    assert len(web["addresses"]) == 2 and "notReadyAddresses" not in web
    # The full pass agrees: it has no Endpoints left to write.
    assert [a for a in c.sync() if a[1] == "Endpoints"] == []


def test_a_changed_service_is_synced_whatever_pods_changed(tmp_path: Path) -> None:
    c = Cluster(tmp_path)
    c.reg.create(DEPLOY, "default", deployment("web", 1))
    for _ in range(4):
        c.sync()
    c.start_all()
    fast = fast_path(c)
    c.store.watch(lambda change: fast._on_change(change))
    c.reg.create(SVC, "default", service("web"))
    assert fast.services_changed
    c.api.take()
    fast.sync(set(), True)
    assert ("create", "Endpoints", "web") in c.api.take()
    assert len(c.store.get(EP, "default", "web")["subsets"][0]["addresses"]) == 1
