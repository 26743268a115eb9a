"""A starting pod (its infra container) and a starting NGINX (ingress, service proxy) make their
address known on the cluster's network at once. A peer that tried the address before the
engine had wired it (the host's docker-proxy behind port 80, or the ingress routing to the pods
of before a `mikro stop`) holds its packets in an unresolved (INCOMPLETE) ARP entry until the
kernel's next probe; the announcement resolves it when the container comes up.

The bridge's probe interval is raised to 30 s here, so that only the container's own
announcement can resolve the entry within the test's wait; a container that does not announce
itself is the control (its entry stays unresolved)."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from mikro.config import INFRA_IMAGE, NGINX_IMAGE
from mikro.net.network import ANNOUNCE
from mikro.node.podplan import INFRA_COMMAND
from tests.conftest import cluster_name, remove_cluster_leftovers

pytestmark = pytest.mark.docker

CLUSTER = cluster_name("announce")
LABELS = {"io.mikro/cluster": CLUSTER}


class Bridge:
    def __init__(self, client: docker.DockerClient, name: str, prefix: str) -> None:
        self.client, self.name, self.prefix = client, name, prefix
        self.next_host = 20

    def container(self, image: str, command: list[str]) -> tuple[str, str]:
        """A created (not started) container at an address of its own: (id, address)."""
        self.next_host += 1
        address = f"{self.prefix}.{self.next_host}"
        api = self.client.api
        ident = api.create_container(
            image,
            command=command,
            entrypoint=[],
            labels=LABELS,
            host_config=api.create_host_config(network_mode=self.name),
            networking_config=api.create_networking_config(
                {self.name: api.create_endpoint_config(ipv4_address=address)}
            ),
        )["Id"]
        return ident, address

    def neighbour(self, address: str) -> str:
        """The host's ARP entry for the address on this bridge: "resolved" (its flags have
        ATF_COM, a hardware address), "unresolved", or "none"."""
        for line in Path("/proc/net/arp").read_text().splitlines()[1:]:
            ip, _, flags, _, _, device = line.split()[:6]
            if ip == address and device == self.name:
                return "resolved" if int(flags, 16) & 0x2 else "unresolved"
        return "none"


@pytest.fixture(scope="module")
def bridge(images: None) -> Iterator[Bridge]:
    client = docker.from_env()
    remove_cluster_leftovers(CLUSTER)
    name = f"mktann{secrets.token_hex(2)}"
    network = None
    for _ in range(20):  # a /24 no other network of this engine holds
        prefix = f"10.{secrets.randbelow(50) + 200}.{secrets.randbelow(256)}"
        try:
            network = client.networks.create(
                name, driver="bridge", labels=LABELS, options={"com.docker.network.bridge.name": name},
                ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=f"{prefix}.0/24")]),
            )
            break
        except docker.errors.APIError:
            continue
    assert network is not None, "no free /24 for the test's network"
    try:
        # One container kept running: the bridge exists, and its carrier stays up (a bridge
        # whose first port comes up flushes its neighbour entries, announced or not).
        made = Bridge(client, name, prefix)
        keeper, _ = made.container(INFRA_IMAGE, ["sleep", "600"])
        client.api.start(keeper)
        Path(f"/proc/sys/net/ipv4/neigh/{name}/retrans_time_ms").write_text("30000")
        yield made
    finally:
        remove_cluster_leftovers(CLUSTER)


def tried_then_started(bridge: Bridge, image: str, command: list[str]) -> str:
    """Create the container, reach for its address from the host before it runs (the host's
    entry is then INCOMPLETE), start it; the host's entry 3 s after the start."""
    ident, address = bridge.container(image, command)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.sendto(b"x", (address, 9))
    assert bridge.neighbour(address) == "unresolved"
    bridge.client.api.start(ident)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and bridge.neighbour(address) != "resolved":
        time.sleep(0.05)
    return bridge.neighbour(address)


def test_a_container_that_does_not_announce_itself_leaves_the_entry_unresolved(bridge: Bridge) -> None:
    entry = tried_then_started(bridge, INFRA_IMAGE, ["sh", "-c", "sleep 60"])
    assert entry == "unresolved"


def test_a_pods_infra_container_announces_its_address(bridge: Bridge) -> None:
    entry = tried_then_started(bridge, INFRA_IMAGE, INFRA_COMMAND)
    assert entry == "resolved"


def test_an_nginx_container_announces_its_address(bridge: Bridge) -> None:
    entry = tried_then_started(bridge, NGINX_IMAGE, ["sh", "-c", ANNOUNCE + "; exec sleep 60"])
    assert entry == "resolved"
