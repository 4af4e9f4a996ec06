"""The reference's global ``-k/--key-file`` and ``-c/--config-file`` may follow the subcommand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

import mycelium
from mycelium.cli.argv import normalise
from mycelium.identity import Identity, save_key_file

MAIN = "from mycelium.cli.main import main; main()"


def test_hoisting() -> None:
    assert normalise(["inspect", "-k", "a.bin", "--json"]) == [
        "-k",
        "a.bin",
        "inspect",
        "--json",
    ]
    assert normalise(["peers", "list", "--key-file=x", "-c", "c.toml"]) == [
        "--key-file=x",
        "-c",
        "c.toml",
        "peers",
        "list",
    ]
    untouched = ["message", "send", "400::1", "--", "-k", "v"]
    assert normalise(untouched) == untouched
    assert normalise(["-k"]) == ["-k"]  # click reports the missing value
    assert normalise(["-t", "0", "--no-tun"]) == ["-t", "0", "--no-tun"]


def test_inspect_and_generate_keys_with_the_key_file_after_the_subcommand(tmp_path: Path) -> None:
    identity = Identity.generate()
    key = tmp_path / "key.bin"
    save_key_file(identity, key)
    out = subprocess.run(
        [sys.executable, "-c", MAIN, "inspect", "--json", "-k", str(key)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(out.stdout)["publicKey"] == identity.public_key.hex()
    fresh = tmp_path / "fresh.bin"
    subprocess.run(
        [sys.executable, "-c", MAIN, "generate-keys", "--key-file", str(fresh)],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert fresh.stat().st_size == 32


def test_version_is_printed_as_clap_prints_it() -> None:
    out = subprocess.run(
        [sys.executable, "-c", MAIN, "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    name, version, *protocol = out.stdout.split()
    assert name == "mycelium" and version[0].isdigit()  # what a script reading clap's line uses
    assert protocol[-3:] == ["mycelium", mycelium.REFERENCE_VERSION, "protocol)"]


def test_peers_lists_are_expanded_and_an_empty_one_refused() -> None:
    assert normalise(["--peers", "tcp://a:1", "quic://[::1]:2", "peers", "list"]) == [
        "--peers",
        "tcp://a:1",
        "--peers",
        "quic://[::1]:2",
        "peers",
        "list",
    ]
    # The first word is always the value: its parser explains what is wrong with it.
    assert normalise(["--peers", "10.0.0.2:9651"]) == ["--peers", "10.0.0.2:9651"]
    assert normalise(["--peers", "x", "inspect"]) == ["--peers", "x", "inspect"]
    for bare in (["--peers"], ["--peers", "--no-tun"], ["--no-tun", "--peers"]):
        with pytest.raises(click.UsageError, match="at least one endpoint"):
            normalise(bare)
