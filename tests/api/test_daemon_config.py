"""The daemon's settings from a config file, from flags, and from both (flags win), as the node
would be started with them; malformed files and unknown keys."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mycelium.cli import serve
from mycelium.cli.argv import normalise
from mycelium.cli.main import cli
from mycelium.node import NodeConfig
from mycelium.settings import Settings

FILE = """
peers = ["tcp://[2001:db8::1]:9651", "quic://192.0.2.7:9651"]
tcp_listen_port = 1234
quic_listen_port = 1235
no_tun = true
tun_name = "myc-file"
api_addr = "127.0.0.1:18989"
metrics_api_address = "127.0.0.1:19999"
disable_peer_discovery = true
firewall_mark = 42
"""


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[NodeConfig, Settings]]:
    """Records what the daemon would run instead of running it."""
    calls: list[tuple[NodeConfig, Settings]] = []

    async def fake_serve(settings: Settings, config: NodeConfig) -> None:
        calls.append((config, settings))

    monkeypatch.setattr(serve, "_serve", fake_serve)
    # No stray default file from the machine running the tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent-mycelium-test")
    return calls


def run(tmp_path: Path, *args: str) -> Any:
    argv = normalise(["-k", str(tmp_path / "key.bin"), *args])
    return CliRunner().invoke(cli, argv, prog_name="mycelium")


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mycelium.toml"
    path.write_text(text)
    return str(path)


def test_file_only(tmp_path: Path, started: list[Any]) -> None:
    result = run(tmp_path, "-c", write(tmp_path, FILE))
    assert result.exit_code == 0, result.output
    config, settings = started[0]
    assert [str(p) for p in config.peers] == ["tcp://[2001:db8::1]:9651", "quic://192.0.2.7:9651"]
    assert (config.tcp_listen_port, config.quic_listen_port) == (1234, 1235)
    assert config.no_tun and config.disable_peer_discovery
    assert (config.tun_name, config.firewall_mark) == ("myc-file", 42)
    assert settings.api_addr == "127.0.0.1:18989"
    assert settings.metrics_api_address == "127.0.0.1:19999"
    assert settings.jsonrpc_addr == "127.0.0.1:8990"  # not in the file: the default


def test_flags_only(tmp_path: Path, started: list[Any]) -> None:
    result = run(
        tmp_path,
        "--peers",
        "tcp://[::1]:9000",
        "tcp://127.0.0.1:9001",
        "-t",
        "2345",
        "--no-tun",
        "--disable-quic",
        "--jsonrpc-addr",
        "127.0.0.1:28990",
        "--metrics-api-address",
        "127.0.0.1:29999",
    )
    assert result.exit_code == 0, result.output
    config, settings = started[0]
    assert [str(p) for p in config.peers] == ["tcp://[::1]:9000", "tcp://127.0.0.1:9001"]
    assert config.tcp_listen_port == 2345 and config.quic_listen_port == 9651
    assert config.no_tun and config.disable_quic and not config.disable_peer_discovery
    assert settings.jsonrpc_addr == "127.0.0.1:28990"
    assert settings.api_addr == "127.0.0.1:8989"
    assert settings.metrics_api_address == "127.0.0.1:29999"


def test_defaults_without_file_or_flags(tmp_path: Path, started: list[Any]) -> None:
    result = run(tmp_path)
    assert result.exit_code == 0, result.output
    config, settings = started[0]
    assert config.peers == [] and config.tcp_listen_port == 9651
    assert not config.no_tun and settings.metrics_api_address is None
    assert (settings.api_addr, settings.jsonrpc_addr) == ("127.0.0.1:8989", "127.0.0.1:8990")


def test_flags_win_over_the_file(tmp_path: Path, started: list[Any]) -> None:
    result = run(
        tmp_path,
        "-c",
        write(tmp_path, FILE),
        "-t",
        "2345",
        "--api-addr",
        "127.0.0.1:38989",
        "--peers",
        "tcp://[::1]:9000",
    )
    assert result.exit_code == 0, result.output
    config, settings = started[0]
    assert config.tcp_listen_port == 2345  # flag
    assert config.quic_listen_port == 1235  # file
    assert [str(p) for p in config.peers] == ["tcp://[::1]:9000"]  # flag replaces the list
    assert settings.api_addr == "127.0.0.1:38989"
    assert settings.metrics_api_address == "127.0.0.1:19999"
    assert config.no_tun and config.tun_name == "myc-file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tcp_listen_port = ", "not valid TOML"),
        ("peers = 1", "peers must be of type list"),
        ("tcp_listen_port = 70000", "not a port number"),
        ("no_tun = 'yes'", "no_tun must be of type boolean"),
    ],
)
def test_malformed_file_is_a_one_line_error(
    tmp_path: Path, started: list[Any], text: str, message: str
) -> None:
    result = run(tmp_path, "-c", write(tmp_path, text))
    assert result.exit_code != 0 and not started
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_explicit_file(tmp_path: Path, started: list[Any]) -> None:
    result = run(tmp_path, "-c", str(tmp_path / "nope.toml"))
    assert result.exit_code != 0 and not started
    assert "not found" in result.output


def test_unknown_key_warns_and_runs(
    tmp_path: Path, started: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mycelium"):
        result = run(tmp_path, "-c", write(tmp_path, "no_tun = true\nfrobnicate = 3\n"))
    assert result.exit_code == 0, result.output
    assert started[0][0].no_tun
    assert any("frobnicate" in r.getMessage() for r in caplog.records)


def test_bad_peer_endpoint_is_a_one_line_error(tmp_path: Path, started: list[Any]) -> None:
    result = run(tmp_path, "--peers", "tcp://not-an-endpoint")
    assert result.exit_code != 0 and not started
    assert "Traceback" not in result.output and result.output.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("file_text", "flags", "enabled"),
    [
        ("enable_dns = true\n", [], True),
        ("enable_dns = false\n", ["--enable-dns"], True),  # flag OR file, as the reference
        ("no_tun = true\n", [], False),
    ],
)
def test_enable_dns_is_flag_or_file(
    tmp_path: Path, started: list[Any], file_text: str, flags: list[str], enabled: bool
) -> None:
    result = run(tmp_path, "-c", write(tmp_path, file_text), *flags)
    assert result.exit_code == 0, result.output
    assert started[0][1].enable_dns is enabled


def test_dns_upstreams_are_parsed_and_a_bad_one_is_a_one_line_error(
    tmp_path: Path, started: list[Any]
) -> None:
    path = write(tmp_path, 'dns_upstream = ["400::1"]\n')
    assert run(tmp_path, "-c", path).exit_code == 0
    assert run(tmp_path, "-c", path, "--dns-upstream", "5ff::2").exit_code == 0
    assert [s.dns_upstream for _, s in started] == [
        (ipaddress.IPv6Address("400::1"),),
        (ipaddress.IPv6Address("5ff::2"),),  # the flag replaces the file's list
    ]
    result = run(tmp_path, "--dns-upstream", "not-an-address")
    assert result.exit_code != 0 and len(started) == 2
    assert "--dns-upstream" in result.output and "Traceback" not in result.output


def test_update_workers_is_accepted_and_ignored(tmp_path: Path, started: list[Any]) -> None:
    result = run(tmp_path, "--update-workers", "8")
    assert result.exit_code == 0, result.output
    assert started  # scripts passing the reference's tuning knob still start a node
