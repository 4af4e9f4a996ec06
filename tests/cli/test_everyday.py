"""Everyday use of the command line against live nodes: ``status``, peers with link cost and round
trip, log lines, and the small frictions a new user meets (option order, typos, timeouts,
ports in use, the version, shell completion)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from api_pair import Pair, running_pair
from api_pair import run_cli as run
from live_daemon import MAIN, running
from mycelium import REFERENCE_VERSION, __version__
from mycelium.cli import client as client_module
from mycelium.cli.argv import normalise
from mycelium.cli.main import cli
from mycelium.cli.table import format_seconds


@pytest.fixture
async def pair() -> object:
    async for p in running_pair():
        yield p


def mycelium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "XDG_CONFIG_HOME": "/nonexistent", **(env or {})},
    )


async def test_status_shows_the_node_at_a_glance(pair: Pair) -> None:
    as_json = await run(pair, "status", "--json")
    assert as_json.exit_code == 0, as_json.output
    status = json.loads(as_json.output)
    a = pair.a
    assert (status["address"], status["publicKey"]) == (str(a.address), a.public_key)
    assert status["subnet"] == str(a.subnet) and status["tun"] == {"enabled": False, "name": None}
    assert (status["version"], status["referenceVersion"]) == (__version__, REFERENCE_VERSION)
    assert status["listen"] == {"tcp": a.tcp_port, "quic": a.quic_port}
    assert status["peersAlive"] == 1 and status["warnings"] == []
    (peer,) = status["peers"]
    assert peer["type"] == "inbound" and peer["state"] == "alive"
    assert peer["linkCost"] > 0 and peer["connectedFor"] >= 0
    assert status["routes"]["selected"] == 1  # to b
    text = await run(pair, "status")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == f"Address:     {a.address}"
    assert "TUN:         none (--no-tun)" in lines
    assert f"Listening:   tcp {a.tcp_port}, quic {a.quic_port}" in lines
    assert "Peers:       1 of 1 alive" in lines and "Warning" not in text.output
    assert status["nat"] == {
        "enabled": True,
        "stunServers": 0,
        "natType": "unknown",
        "publicAddresses": [],
        "directLinks": 0,
    }
    assert "NAT:         mapping unknown (no --stun-server)" in lines


async def test_status_of_a_node_without_our_status_document(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reference node has only the admin API: status says what that tells."""
    monkeypatch.setattr(client_module.ApiClient, "get_status", lambda self: None)
    text = await run(pair, "status")
    assert text.exit_code == 0, text.output
    assert f"Address:     {pair.a.address}" in text.output
    assert "? (not a pymycelium node)" in text.output and "Peers:       1 of 1 alive" in text.output


async def test_peers_list_shows_link_cost_and_round_trip(pair: Pair) -> None:
    text = await run(pair, "peers", "list")
    header = [c.strip() for c in text.output.splitlines()[1].split("|")[1:-1]]
    assert header[-2:] == ["Link cost", "RTT"]
    row = [c.strip() for c in text.output.splitlines()[3].split("|")[1:-1]]
    assert row[-2].isdigit() and row[-1] in ("-", *(f"{n} ms" for n in range(1000)))
    # After the first Hello/IHU round (Hellos every 3 s), the round trip is measured.
    (link,) = pair.a.links
    async with asyncio.timeout(15):
        while pair.a.router.rtt(link) is None:
            await asyncio.sleep(0.1)
    row = (await run(pair, "peers", "list")).output.splitlines()[3]
    assert re.search(r"\| \d+ ms +\|$", row), row


async def test_every_json_output_is_indented(pair: Pair) -> None:
    for args in (
        ("peers", "list"),
        ("routes", "selected"),
        ("routes", "fallback"),
        ("stats", "packets"),
        ("status",),
    ):
        result = await run(pair, *args, "--json")
        assert result.exit_code == 0, (args, result.output)
        value = json.loads(result.output)
        assert result.output == json.dumps(value, indent=2) + "\n", args


async def test_api_addr_may_follow_the_subcommand_and_must_be_an_address(pair: Pair) -> None:
    host, port = pair.servers.addresses["REST"]
    args = normalise(["peers", "list", "--json", "--api-addr", f"{host}:{port}"])
    listed = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["type"] == "inbound"
    bad = CliRunner().invoke(cli, ["--api-addr", "38989", "peers", "list"])
    assert bad.exit_code == 1
    assert "--api-addr: '38989' is not an address:port (e.g. 127.0.0.1:8989)" in bad.output


def test_daemon_typos_are_one_line_errors(tmp_path: Path) -> None:
    key = str(tmp_path / "k.bin")
    for args, message in (
        (["--peers"], "--peers needs at least one endpoint"),
        (["--no-tun", "--peers", "--disable-quic"], "--peers needs at least one endpoint"),
        (["--peers", "10.0.0.2:9651"], "did you mean tcp://10.0.0.2:9651?"),
        (["--peers", "tcp://[::1]:1", "10.0.0.2:9651"], "did you mean tcp://10.0.0.2:9651?"),
        (["--api-addr", "38989"], "'38989' is not an address:port"),
    ):
        result = mycelium("-k", key, *args)
        assert result.returncode != 0, args
        assert message in result.stderr and "No such command" not in result.stderr, args
        assert "Traceback" not in result.stderr


def test_a_key_file_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.key"
    for args in (["generate-keys"], ["--no-tun"]):
        result = mycelium("-k", str(missing), *args)
        assert result.returncode == 1, args
        assert f"directory {missing.parent} does not exist" in result.stderr
    assert not (tmp_path / "no").exists()
    # The default location's directories are created.
    created = mycelium("generate-keys", env={"XDG_DATA_HOME": str(tmp_path / "data")})
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "data" / "mycelium" / "priv_key.bin").stat().st_size == 32


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET6) as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("::", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with running(tmp_path, "-t", str(port)) as daemon:
            assert daemon.proc.wait(20) == 1
            out = daemon.output()
    assert f"Error: cannot listen for TCP on port {port}: Address already in use" in out
    assert "another node running?" in out and "Traceback" not in out


def test_daemon_log_lines_are_logfmt_and_name_what_happened(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
    config = tmp_path / "mycelium.toml"
    config.write_text(f'peers = ["{dead}"]\n')
    with running(tmp_path, "-c", str(config), "--log-format", "logfmt") as daemon:
        daemon.wait_up()
        time.sleep(2.0)  # a few retries (0.2-0.4 s, then doubling)
        out = daemon.stop()
    lines = out.splitlines()
    assert all(line.startswith("ts=") for line in lines), out
    assert any(
        "level=warn target=mycelium.identity "
        'message="key file not found: generated a new key"' in line
        for line in lines
    ), out
    assert any(f'message="loaded config file" path={config}' in line for line in lines), out
    failures = [line for line in lines if "cannot connect to peer" in line]
    assert len(failures) == 1, out  # retried several times, said once
    assert f"peer={dead} error=" in failures[0] and "retry_in=" in failures[0]
    assert "peer still unreachable" not in out  # the next report comes after 10 minutes


def test_a_lone_node_warns_in_status(tmp_path: Path) -> None:
    with running(tmp_path) as daemon:
        daemon.wait_up()
        text = daemon.client("status")
        shown = daemon.client("status", "--json")
    assert text.returncode == 0, text.stderr
    assert "Peers:       0 of 0 alive" in text.stdout
    assert "Warning: no peer is connected: this node reaches no one." in text.stdout
    assert "--public-peers" in json.loads(shown.stdout)["warnings"][0]


def test_timeouts_have_their_own_exit_status(tmp_path: Path) -> None:
    with running(tmp_path) as daemon:
        daemon.wait_up()
        received = daemon.client("message", "receive", "--timeout", "1")
    assert (received.returncode, received.stdout) == (124, "")
    assert received.stderr == "no message within 1 s\n"


def test_version_names_the_reference_protocol() -> None:
    out = mycelium("--version")
    assert out.stdout == (
        f"mycelium {__version__} (pymycelium, speaks the mycelium {REFERENCE_VERSION} protocol)\n"
    )


def test_shell_completion_scripts() -> None:
    for shell in ("bash", "zsh", "fish"):
        out = mycelium(env={"_MYCELIUM_COMPLETE": f"{shell}_source"})
        assert out.returncode == 0 and "_MYCELIUM_COMPLETE" in out.stdout, shell
    words = mycelium(
        env={"_MYCELIUM_COMPLETE": "bash_complete", "COMP_WORDS": "mycelium st", "COMP_CWORD": "1"}
    )
    assert "plain,status" in words.stdout.replace("\n", ",")


def test_uptime_units_do_not_wrap_at_sixty() -> None:
    assert format_seconds(2 * 86400) == "2d 0h 0m 0s"
    assert format_seconds(86400 + 3600 + 61) == "1d 1h 1m 1s"
    assert format_seconds(100 * 86400) == "100d 0h 0m 0s"
