"""The Docker engine's refusals reach the user as one line, and `mikro reset` finishes when the
engine keeps the cluster's emptied network (no Docker needed: the Docker side is a fake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import docker.errors
import pytest
from click.testing import CliRunner

from mikro import config
from mikro.cli import main as cli_main
from mikro.cli import supervised


def test_a_docker_refusal_is_one_error_line_and_a_non_zero_exit() -> None:
    @click.command()
    @cli_main.handled
    def refuse() -> None:
        raise docker.errors.APIError("409 Client Error", explanation="container is already in use")

    result = CliRunner().invoke(refuse, [])
    assert result.exit_code == 1
    assert result.output.strip() == "error: the Docker engine refused: container is already in use"
    assert "Traceback" not in result.output


def test_an_error_of_mikro_itself_is_not_dressed_as_a_docker_refusal() -> None:
    @click.command()
    @cli_main.handled
    def broken() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        CliRunner().invoke(broken, [], catch_exceptions=False)


class KeptNetwork:
    """A Docker side with nothing left but a network the engine will not let go."""

    def containers(self, **labels: str) -> list[dict[str, Any]]:
        return []

    def volumes(self) -> list[Any]:
        return []

    def network_name(self) -> str:
        return "mikro-t"

    def remove_network(self) -> str:
        return "error while removing network: network mikro-t id 1234 has active endpoints"


def test_reset_finishes_and_warns_when_docker_keeps_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIKRO_HOME", str(tmp_path))
    monkeypatch.setenv("MIKRO_CLUSTER", "t")
    paths = config.paths()
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.db.write_text("store")
    monkeypatch.setattr(cli_main, "docker_side", KeptNetwork)
    monkeypatch.setattr(supervised, "stop", lambda cluster, timeout: False)

    result = CliRunner().invoke(cli_main.main, ["reset", "--yes"])

    assert result.exit_code == 0, result.output
    assert "warning: Docker kept network mikro-t: error while removing network" in result.output
    assert "Cluster t reset." in result.output
    assert not paths.db.exists()
