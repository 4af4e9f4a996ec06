"""A peer killed with SIGKILL and started again (same key, new router ID, seqno 0) is routed to
again."""

from __future__ import annotations

import signal

import pytest

from netns.harness import Network

pytestmark = pytest.mark.netns


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
    # Same key, fresh process: a new router ID, seqno 0 again (docs/routing.md §4.9).
    n2 = net.start_node(names[2], [f"tcp://[{left12}]:9651"], "--disable-peer-discovery")
    net.wait_tun(n2)
    took = net.wait_ping(names[0], n2.address, timeout=40)
    assert took < 40
    net.wait_ping(names[2], n0.address, timeout=10)
