"""``--stun-server`` and ``--disable-hole-punching``: flags, config file, errors, and what the
node is started with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mycelium.cli import serve
from mycelium.cli.main import cli
from mycelium.nat.servers import (
    DEFAULT_STUN_SERVERS,
    StunServerError,
    parse_stun_server,
    stun_servers,
)
from mycelium.node import NodeConfig
from mycelium.settings import Settings


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[NodeConfig]:
    calls: list[NodeConfig] = []

    async def fake_serve(settings: Settings, config: NodeConfig) -> None:
        calls.append(config)

    monkeypatch.setattr(serve, "_serve", fake_serve)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent-mycelium-test")
    return calls


def run(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["-k", str(tmp_path / "k.bin"), *args], prog_name="mycelium")


def test_defaults_punch_without_any_stun_server(tmp_path: Path, started: list[NodeConfig]) -> None:
    assert run(tmp_path).exit_code == 0
    (config,) = started
    assert config.hole_punching and config.stun_servers == []


def test_flags(tmp_path: Path, started: list[NodeConfig]) -> None:
    result = run(
        tmp_path,
        "--stun-server",
        "192.0.2.1:3478",
        "--stun-server",
        "[2001:db8::1]:3479",
        "--stun-server",
        "stun.example.org:19302",
        "--disable-hole-punching",
    )
    assert result.exit_code == 0, result.output
    (config,) = started
    assert config.stun_servers == [
        ("192.0.2.1", 3478),
        ("2001:db8::1", 3479),
        ("stun.example.org", 19302),
    ]
    assert not config.hole_punching


def test_config_file_and_default(tmp_path: Path, started: list[NodeConfig]) -> None:
    path = tmp_path / "m.toml"
    path.write_text('stun_servers = ["default"]\ndisable_hole_punching = false\n')
    assert run(tmp_path, "-c", str(path)).exit_code == 0
    (config,) = started
    assert config.stun_servers == [parse_stun_server(s) for s in DEFAULT_STUN_SERVERS]


@pytest.mark.parametrize(
    "bad", ["nohost", "host:", ":3478", "[::1:3478", "a:0", "a:70000", "1:2:3"]
)
def test_bad_servers_are_one_line_errors(
    tmp_path: Path, started: list[NodeConfig], bad: str
) -> None:
    result = run(tmp_path, "--stun-server", bad)
    assert result.exit_code != 0 and not started
    assert "Traceback" not in result.output and "stun" in result.output.lower()
    with pytest.raises(StunServerError):
        parse_stun_server(bad)


def test_duplicates_collapse() -> None:
    assert stun_servers(["192.0.2.1:1", "192.0.2.1:1", "default", "default"]) == [
        ("192.0.2.1", 1),
        *(parse_stun_server(s) for s in DEFAULT_STUN_SERVERS),
    ]
