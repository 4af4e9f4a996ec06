"""Everyday features on real networks: peers named by host name (resolved at every attempt),
``--allow-from`` in front of a real TUN, and ``mycelium status`` of nodes with a TUN."""

from __future__ import annotations

import json
import os
import time

import pytest

from netns.harness import MYCELIUM, Network, wait_until

pytestmark = pytest.mark.netns


def status(net: Network, ns: str) -> dict:
    out = net.exec(ns, MYCELIUM, "status", "--json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def test_a_peer_named_by_host_name_is_resolved_at_every_attempt(net: Network) -> None:
    a, b = net.ns("a"), net.ns("b")
    _, _, addr_a, _ = net.link(a, b)
    # At first the name points nowhere useful: b keeps failing, and says why.
    net.hosts(b, {"node-a.test": "fd00:1::99"})
    node_a = net.start_node(a, [], "--disable-peer-discovery")
    node_b = net.start_node(b, ["tcp://node-a.test:9651"], "--disable-peer-discovery")
    net.wait_tun(node_a)
    net.wait_tun(node_b)

    def failing() -> dict | None:
        s = status(net, b)
        peer = s.get("peers", [{}])[0]
        return peer if peer.get("lastError") else None

    peer = wait_until(failing, timeout=30)
    assert peer is not None, node_b.log()
    assert peer["endpoint"] == "tcp://node-a.test:9651" and peer["state"] != "alive"
    # The record is fixed: the next attempt (at most 5 s later) resolves it again and connects.
    fixed = time.monotonic()
    net.hosts(b, {"node-a.test": addr_a})
    alive = wait_until(
        lambda: (s := status(net, b)) and s["peersAlive"] == 1 and s["peers"][0], timeout=30
    )
    assert alive, node_b.log()
    print(f"connected {time.monotonic() - fixed:.1f} s after the record was fixed")
    assert alive["address"] == addr_a and alive["endpoint"] == "tcp://node-a.test:9651"
    net.wait_ping(b, node_a.address, timeout=30)
    log = node_b.log()
    assert "cannot connect to peer peer=tcp://node-a.test:9651" in log
    assert "peer connected peer=tcp://node-a.test:9651 address=fd00:1::1" in log


def test_allow_from_guards_the_tun_and_leaves_forwarding_alone(net: Network) -> None:
    """a - b - c in a line; b accepts packets only from a. c reaches a through b, not b."""
    a, b, c = net.ns("a"), net.ns("b"), net.ns("c")
    _, _, addr_a, _ = net.link(a, b)
    _, _, addr_b, _ = net.link(b, c)
    node_a = net.start_node(a, [], "--disable-peer-discovery")
    allowed = node_a.identity.public_key.hex()
    node_b = net.start_node(
        b, [f"tcp://[{addr_a}]:9651"], "--disable-peer-discovery", "--allow-from", allowed
    )
    node_c = net.start_node(c, [f"tcp://[{addr_b}]:9651"], "--disable-peer-discovery")
    for node in (node_a, node_b, node_c):
        net.wait_tun(node)
    net.wait_ping(a, node_b.address, timeout=30)
    net.wait_ping(c, node_a.address, timeout=30)  # through b: forwarding is not filtered
    assert not net.ping(c, node_b.address, count=3, wait=2)
    shown = status(net, b)
    own, theirs = str(node_b.identity.subnet), str(node_a.identity.subnet)
    assert sorted(shown["allowFrom"]) == sorted([own, theirs])  # our own /64 always passes
    assert shown["notAllowed"] >= 3
    assert shown["tun"] == {"enabled": True, "name": "mycelium"} and shown["peersAlive"] == 2
    text = net.exec(b, MYCELIUM, "status").stdout
    assert "TUN:         mycelium" in text and "Peers:       2 of 2 alive" in text
    assert "packets refused)" in text


@pytest.mark.skipif(
    not os.access(os.environ.get("MYCELIUM_REFERENCE_BIN", ""), os.X_OK),
    reason="set MYCELIUM_REFERENCE_BIN to a reference mycelium binary",
)
def test_status_of_a_reference_node_and_ours_as_its_peer(net: Network) -> None:
    """``mycelium status`` against the reference's admin API, and a reference node reached by
    host name."""
    ours_ns, rust_ns = net.ns("p"), net.ns("r")
    _, _, _, addr_r = net.link(ours_ns, rust_ns)
    net.hosts(ours_ns, {"rust.test": addr_r})
    reference = os.environ["MYCELIUM_REFERENCE_BIN"]
    rust = net.start_node(rust_ns, [], "--disable-peer-discovery", binary=reference)
    ours = net.start_node(ours_ns, ["tcp://rust.test:9651"], "--disable-peer-discovery")
    net.wait_tun(rust)
    net.wait_tun(ours)
    net.wait_ping(ours_ns, rust.address, timeout=30)
    shown = wait_until(lambda: (s := status(net, rust_ns)) and s["peersAlive"] == 1 and s, 30)
    assert shown, rust.log()
    assert "version" not in shown and shown["publicKey"] == rust.identity.public_key.hex()
    assert shown["peers"][0]["type"] == "inbound" and shown["routes"]["selected"] == 1
    text = net.exec(rust_ns, MYCELIUM, "status").stdout
    assert "? (not a pymycelium node)" in text and "Peers:       1 of 1 alive" in text
    assert status(net, ours_ns)["peers"][0]["address"] == addr_r
