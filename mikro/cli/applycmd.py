"""`mikro apply -f` (and `mikro kubectl apply`): read the manifests, then apply them through the
API. Without click: mikro.cli.entry runs the common forms of `apply` straight from here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from mikro.api import resources
from mikro.cli import kubectl
from mikro.cli.client import Client, NotRunning


def apply(
    files: tuple[str, ...], recursive: bool, namespace: str, wait: bool, timeout: float, validate: str = "strict"
) -> int:
    """Apply the manifests in `files`; the exit code."""
    if not files:
        raise kubectl.UsageError("must specify one of -f and -k")
    from mikro.cli import manifest

    clients: list[Client] = []  # the files are read first: a bad one fails without a cluster

    def client_() -> Client:
        if not clients:
            clients.append(Client.from_state())
        return clients[0]

    documents = manifest.load(files, recursive, namespace, learn=lambda objs: learn_kinds(client_, objs))
    if not documents:
        sys.stderr.write(f"nothing to apply: {', '.join(files)} holds no object\n")
        return 0
    client = client_()
    applied = kubectl.apply_documents(client, documents, namespace, validate)
    if wait:
        return kubectl.wait_ready(client, applied, timeout)
    return 0


def learn_kinds(client: Callable[[], Client], objs: list[dict[str, Any]]) -> None:
    """Custom kinds: from the server's discovery, and from the CRDs being applied."""
    from mikro.cli import discovery

    if any(resources.kind_of(str(o.get("kind"))) is None for o in objs if isinstance(o, dict)):
        discovery.learn_from_manifests(objs)
        try:
            discovery.learn(client())
        except NotRunning:
            pass  # the kind check then says what is unknown; applying needs the cluster anyway
