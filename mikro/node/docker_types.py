"""The shape of a container to create: plain data, so that planning code needs no Docker."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ContainerSpec:
    """Everything needed to create one container; `labels` carry the ownership and spec hash."""

    name: str
    image: str
    labels: dict[str, str]
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None
    network: str | None = None  # a network name, or None with network_mode
    network_mode: str | None = None  # "container:<id>"
    ip: str | None = None
    aliases: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_opt: list[str] = field(default_factory=list)
    ports: dict[str, tuple[str, int]] = field(default_factory=dict)  # "80/tcp" -> (host ip, host port)
    working_dir: str | None = None
    mem_limit: int | None = None
    nano_cpus: int | None = None
    binds: dict[str, dict[str, str]] = field(default_factory=dict)
    stop_signal: str | None = None
    stop_timeout: int | None = None
    tty: bool = False
    stdin_open: bool = False
    user: str | None = None
    group_add: list[str] = field(default_factory=list)
    read_only: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    privileged: bool = False
    security_opt: list[str] = field(default_factory=list)
    pid_mode: str | None = None


@dataclass(frozen=True)
class SupervisedContainer:
    """A container the Docker engine itself keeps running (the control plane's): it comes back
    after a crash and after an engine restart, until it is stopped with `docker stop`."""

    name: str
    image: str
    labels: dict[str, str]
    command: list[str]
    env: dict[str, str]
    binds: dict[str, dict[str, str]]
    restart_policy: str  # "unless-stopped": a stopped one stays stopped across engine restarts
    network_mode: str  # "host": the API listens on the host's 127.0.0.1
    pid_mode: str  # "host": the pid it records is a host pid, as a forked control plane's
    user: str | None
    group_add: list[str]
    stop_timeout: int
