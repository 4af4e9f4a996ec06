"""The daemon's process life: SIGTERM stops it cleanly within 2 s and removes the TUN; without
privileges it explains itself (no traceback) unless --no-tun, which works unprivileged."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from netns.harness import MYCELIUM, Network, wait_until

pytestmark = pytest.mark.netns


def test_sigterm_stops_the_node_within_two_seconds_and_removes_the_tun(net: Network) -> None:
    ns = net.ns("st")
    node = net.start_node(ns, [], "--disable-peer-discovery")
    net.wait_tun(node)
    assert node.proc is not None
    started = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    code = node.proc.wait(timeout=10)
    assert time.monotonic() - started < 2.0
    assert code == 0, node.log()
    links = net.exec(ns, "ip", "link", "show").stdout
    assert "mycelium" not in links
    assert "Traceback" not in node.log()


def test_start_without_privileges_gives_a_hint_and_no_tun_works(net: Network) -> None:
    ns = net.ns("up")
    key = net.workdir / "unpriv.key"
    # Root's uid but no capabilities at all: exactly what opening a TUN device needs is missing.
    base = [
        "ip",
        "netns",
        "exec",
        ns,
        "setpriv",
        "--bounding-set=-all",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--",
    ]
    out = subprocess.run(
        [*base, MYCELIUM, "-k", str(key), "--disable-peer-discovery", "--tcp-listen-port", "19651"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode != 0
    assert "--no-tun" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout

    proc = subprocess.Popen(
        [
            *base,
            MYCELIUM,
            "-k",
            str(key),
            "--no-tun",
            "--disable-peer-discovery",
            "--tcp-listen-port",
            "19652",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        listening = wait_until(
            lambda: net.exec(ns, "ss", "-Htln", "sport = :19652").stdout.strip(), timeout=20
        )
        assert listening, "the --no-tun node without privileges is not listening"
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_as_user_nobody_without_no_tun_hints_and_with_no_tun_runs(net: Network) -> None:
    ns = net.ns("nb")
    # A directory nobody can write its key file into (the test's tmp_path is root's, 0700).
    with tempfile.TemporaryDirectory(prefix="mnnobody-") as tmp:
        Path(tmp).chmod(0o777)
        key = Path(tmp) / "nobody.key"
        base = [
            "ip",
            "netns",
            "exec",
            ns,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
        ]
        probe = subprocess.run(
            [*base, sys.executable, "-c", "import mycelium.cli.main"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode != 0:
            pytest.skip(f"the Python install is not usable by uid 65534: {probe.stderr[-200:]}")
        common = ["-k", str(key), "--disable-peer-discovery", "--api-addr", "127.0.0.1:18989"]
        common += ["--jsonrpc-addr", "127.0.0.1:18990"]
        out = subprocess.run(
            [*base, MYCELIUM, *common, "--tcp-listen-port", "19653", "--quic-listen-port", "19653"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode != 0
        assert "--no-tun" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr + out.stdout
        proc = subprocess.Popen(
            [
                *base,
                MYCELIUM,
                *common,
                "--no-tun",
                "--tcp-listen-port",
                "19654",
                "--quic-listen-port",
                "19654",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            listening = wait_until(
                lambda: net.exec(ns, "ss", "-Htln", "sport = :19654").stdout.strip(), timeout=20
            )
            assert listening, "the --no-tun node as nobody is not listening"
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        assert "Traceback" not in (proc.stdout.read() if proc.stdout else "")
