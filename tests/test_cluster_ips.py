"""Cluster IP allocation: the addresses a Service may get, counted as integers (pure, no
Docker), the same as `ipaddress`'s hosts() and the microk8s-like x.x.183.y preference."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from mikro.api.registry import Registry, host_numbers, microk8s_numbers
from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.errors import ApiError


@pytest.mark.parametrize(
    "cidr",
    ["10.152.128.0/17", "10.152.183.0/24", "10.152.183.128/25", "10.96.0.0/12", "192.168.5.0/28",
     "10.0.0.0/31", "10.0.0.7/32", "fd00:10:96::/112", "fd00::/127", "fd00::1/128"],
)
def test_the_integer_ranges_are_the_hosts_and_the_preferred_block(cidr: str) -> None:
    network = ipaddress.ip_network(cidr)
    hosts = host_numbers(network)
    assert [network.network_address.__class__(n) for n in hosts] == list(network.hosts())
    old_preferred = [int(h) for h in network.hosts() if network.version == 4 and h.packed[2] == 183 and h.packed[3] > 1]
    assert microk8s_numbers(network, hosts) == old_preferred


def _service(registry: Registry, name: str) -> str:
    svc = registry.create(BY_KIND["Service"], "default", {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}})
    return str(svc["spec"]["clusterIP"])


def test_services_get_distinct_addresses_in_the_preferred_block_until_the_range_is_full(tmp_path: Path) -> None:
    registry = Registry(Store(tmp_path / "db"), "10.152.183.0/29", "mikro")
    registry.store.create(BY_KIND["Namespace"], {"metadata": {"name": "default"}})
    given = [_service(registry, f"s{i}") for i in range(5)]  # .2 to .6: x.x.183.y, y > 1
    assert sorted(given) == [f"10.152.183.{i}" for i in range(2, 7)]
    given.append(_service(registry, "s5"))  # only .1 is left
    assert given[-1] == "10.152.183.1"
    with pytest.raises(ApiError) as err:
        _service(registry, "s6")
    assert err.value.code == 500 and "no free cluster IP in 10.152.183.0/29" in err.value.message
