"""A harness for controller tests: the real registry over a throw-away SQLite store, an `Api`
that records every write a pass makes, a clock the test moves, and a kubelet played by hand.
No Docker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND, Resource
from mikro.api.store import Store
from mikro.controllers.helpers import ClusterApi, Obj
from mikro.controllers.manager import Controllers
from mikro.controlplane import bootstrap

POD = BY_KIND["Pod"]
Action = tuple[str, ...]


class Recorder(ClusterApi):
    """ClusterApi that writes for real and records ("create"|"update"|"status"|"delete", kind, name)
    and ("event", reason, message)."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self.actions: list[Action] = []

    def create(self, res: Resource, ns: str, body: Obj) -> Obj:
        created = super().create(res, ns, body)
        self.actions.append(("create", res.kind, created["metadata"]["name"]))
        return created

    def update(self, res: Resource, obj: Obj) -> Obj:
        self.actions.append(("update", res.kind, obj["metadata"]["name"]))
        return super().update(res, obj)

    def update_status(self, res: Resource, obj: Obj) -> Obj:
        self.actions.append(("status", res.kind, obj["metadata"]["name"]))
        return super().update_status(res, obj)

    def delete(self, res: Resource, ns: str, name: str) -> None:
        self.actions.append(("delete", res.kind, name))
        super().delete(res, ns, name)

    def remove(self, res: Resource, ns: str, name: str) -> None:
        self.actions.append(("remove", res.kind, name))
        super().remove(res, ns, name)

    def event(self, obj: Obj, reason: str, message: str, component: str, type_: str = "Normal") -> None:
        self.actions.append(("event", reason, message))
        super().event(obj, reason, message, component, type_)

    def take(self) -> list[Action]:
        out, self.actions = self.actions, []
        return out


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


class Cluster:
    """One store, its controllers (run pass by pass) and a hand-played kubelet."""

    def __init__(self, tmp: Path) -> None:
        self.reg = Registry(Store(tmp / "db"), "10.152.128.0/17", "mikro")
        bootstrap(self.reg, "mikro", "mikro", "10.152.0.1")
        self.store = self.reg.store
        self.api = Recorder(self.reg)
        self.clock = Clock()
        self.ctl = Controllers(self.reg, clock=self.clock, api=self.api)
        self.next_ip = 10

    def sync(self) -> list[Action]:
        """One controller pass; the writes it made."""
        self.api.take()
        self.ctl.sync_all()
        assert self.reg.events.flush()  # (Events are written in the background, as upstream's)
        return self.api.take()

    def pods(self, ns: str = "default") -> list[Obj]:
        return [p for p in self.store.list(POD, ns)[0] if not p["metadata"].get("deletionTimestamp")]

    def pod(self, name: str, ns: str = "default") -> Obj:
        return self.store.get(POD, ns, name)

    def names(self, ns: str = "default") -> list[str]:
        return sorted(p["metadata"]["name"] for p in self.pods(ns))

    def set_pod(self, name: str, ready: bool = True, phase: str = "Running", ns: str = "default") -> None:
        """The kubelet's part for one pod: scheduled, running with an IP, ready or not."""
        pod = self.store.get(POD, ns, name)
        if not pod["spec"].get("nodeName"):
            pod["spec"]["nodeName"] = "mikro"
            pod = self.store.update(POD, pod)
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            ip = f"10.152.0.{self.next_ip}"
            self.next_ip += 1
        pod["status"] = {
            "phase": phase,
            "podIP": ip,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2026-01-01T11:00:00Z"}
            ],
        }
        self.store.update(POD, pod, status_only=True)

    def start_all(self, ready: bool = True, ns: str = "default") -> None:
        for p in self.pods(ns):
            self.set_pod(p["metadata"]["name"], ready=ready, ns=ns)

    def reap(self, ns: str = "default") -> list[str]:
        """The kubelet finishing deletions: terminating pods go away."""
        gone = []
        for p in self.store.list(POD, ns)[0]:
            if p["metadata"].get("deletionTimestamp"):
                self.store.delete(POD, ns, p["metadata"]["name"])
                gone.append(p["metadata"]["name"])
        return gone

    def patch(self, res: str, name: str, body: dict[str, Any], ns: str = "default") -> Obj:
        return self.reg.patch(BY_KIND[res], ns, name, "application/merge-patch+json", body)


def created(actions: list[Action], kind: str = "Pod") -> list[str]:
    return [a[2] for a in actions if a[0] == "create" and a[1] == kind]


def deleted(actions: list[Action], kind: str = "Pod") -> list[str]:
    return [a[2] for a in actions if a[0] == "delete" and a[1] == kind]
