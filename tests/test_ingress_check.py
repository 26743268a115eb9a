"""The ingress configuration check: NGINX refuses a candidate, mikro denies the one Ingress that
breaks it and serves the others (issue 11, item 3). A fake `nginx -t` stands in for Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mikro.config import Paths
from mikro.net import ingress as ingress_model
from mikro.net.network import Network

from .test_ingress import CERT, ep, ing, path, svc


class FakeRegistry:
    store = None

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def record_event(self, obj: dict[str, Any], reason: str, message: str, *args: Any) -> None:
        self.events.append((obj["metadata"]["name"], reason, message))


class FakeDocker:
    """`nginx -t` that refuses any configuration naming a host it cannot hash."""

    def __init__(self, root: Path, refuse: str) -> None:
        self.root, self.refuse, self.checks = root, refuse, 0

    def exec(self, ident: str, argv: list[str]) -> tuple[int, bytes]:
        self.checks += 1
        text = (self.root / "ingress" / Path(argv[-1]).name).read_text()
        if self.refuse in text:
            return 1, b"nginx: [emerg] could not build server_names_hash"
        return 0, b""


def network(tmp_path: Path, refuse: str) -> tuple[Network, FakeRegistry, FakeDocker]:
    reg, docker = FakeRegistry(), FakeDocker(tmp_path, refuse)
    (tmp_path / "ingress").mkdir()
    net = Network(reg, docker, Paths(tmp_path), "c", "c", "mikro/nginx:1.22", "127.0.0.1")  # type: ignore[arg-type]
    return net, reg, docker


def test_the_ingress_nginx_refuses_is_denied_and_the_others_served(tmp_path: Path) -> None:
    long_host = ".".join(["a" * 60, "b" * 60, "c" * 60])
    ingresses = [
        ing("first", [{"http": {"paths": [path("/", "web", 80)]}}], created="2026-01-01T00:00:00Z"),
        ing("bad", [{"host": long_host, "http": {"paths": [path("/", "web", 80)]}}], created="2026-01-02T00:00:00Z"),
        ing(
            "later",
            [{"host": "later.local", "http": {"paths": [path("/", "web", 80)]}}],
            created="2026-01-03T00:00:00Z",
        ),
    ]
    for version, i in enumerate(ingresses, start=1):
        i["metadata"]["resourceVersion"] = str(version)
    services, endpoints = [svc("web", [{"port": 80}])], [ep("web", ["10.0.0.2"], 80)]

    def render(subset: list[dict[str, Any]]) -> tuple[str, dict[str, Any], list[Any]]:
        model, problems = ingress_model.build(subset, services, endpoints, {}, CERT)
        return ingress_model.render_ingress(model), model, problems

    net, reg, docker = network(tmp_path, long_host)
    text, model, problems = render(ingresses)
    text, model, _ = net._checked_ingress("ingress-id", ingresses, text, model, problems, render)
    assert long_host not in text and '"later.local"' in text
    assert [(name, reason) for name, reason, _ in reg.events] == [("bad", "Rejected")]
    assert "could not build server_names_hash" in reg.events[0][2]
    assert net._is_denied(ingresses[1]) and not net._is_denied(ingresses[2])
    # Changed, the Ingress is tried again; deleted, its denial is forgotten by the next sync.
    ingresses[1]["metadata"]["resourceVersion"] = "9"
    assert not net._is_denied(ingresses[1])


def test_an_accepted_candidate_costs_one_check(tmp_path: Path) -> None:
    net, reg, docker = network(tmp_path, "never-there")
    model, problems = ingress_model.build([ing("a", [{"http": {"paths": [path("/", "web", 80)]}}])], [], [], {}, CERT)
    text = ingress_model.render_ingress(model)
    out, _, _ = net._checked_ingress("id", [], text, model, problems, lambda s: ("", {}, []))
    assert out == text and docker.checks == 1 and reg.events == []
