"""A node's life on a real network: found by link-local discovery, killed and restarted with a new
router ID, stopped by SIGTERM, run without privileges."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from netns.harness import MYCELIUM, Network, wait_until

pytestmark = pytest.mark.netns


def test_two_nodes_without_peers_find_each_other_by_discovery(net: Network) -> None:
    a, b = net.ns("da"), net.ns("db")
    net.link(a, b)
    settled = wait_until(
        lambda: (
            not any(
                net.exec(ns, "ip", "-6", "addr", "show", "tentative").stdout.strip()
                for ns in (a, b)
            )
        ),
        timeout=10,
    )
    assert settled, "link-local addresses still tentative"
    na = net.start_node(a)
    net.wait_tun(na)
    # Beacons go out at start and every 60 s (wire.md §7): the first node's start beacon finds
    # nobody; the second node's is heard, and the first node dials it.
    nb = net.start_node(b)
    net.wait_tun(nb)
    net.wait_ping(a, nb.address, timeout=40)
    net.wait_ping(b, na.address, timeout=10)


def test_peer_killed_and_restarted_with_new_router_id_is_routed_to_again(net: Network) -> None:
    names = [net.ns(f"k{i}") for i in range(3)]
    _, _, left01, _ = net.link(names[0], names[1])
    _, _, left12, _ = net.link(names[1], names[2])
    n0 = net.start_node(names[0], [], "--disable-peer-discovery")
    n1 = net.start_node(names[1], [f"tcp://[{left01}]:9651"], "--disable-peer-discovery")
    n2 = net.start_node(names[2], [f"tcp://[{left12}]:9651"], "--disable-peer-discovery")
    for node in (n0, n1, n2):
        net.wait_tun(node)
    net.wait_ping(names[0], n2.address, timeout=30)

    net.kill(n2, signal.SIGKILL)
    # Same key, fresh process: a new router ID, seqno 0 again (routing.md §4.9).
    n2 = net.start_node(names[2], [f"tcp://[{left12}]:9651"], "--disable-peer-discovery")
    net.wait_tun(n2)
    took = net.wait_ping(names[0], n2.address, timeout=40)
    assert took < 40
    net.wait_ping(names[2], n0.address, timeout=10)


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
