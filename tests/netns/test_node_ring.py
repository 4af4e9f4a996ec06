"""Five real nodes in a ring: everyone reaches everyone; cutting a link moves traffic the other
way round (after the reference's dead-neighbour timeout), restoring it brings traffic back.

Paths differ in hop count, which the hop limit of echo replies shows (this kernel has no netem
to make latencies distinct)."""

from __future__ import annotations

import itertools
import time

import pytest

from netns.harness import Network, NodeProcess, forward_links, wait_until

pytestmark = pytest.mark.netns


def build_ring(net: Network, count: int) -> tuple[list[NodeProcess], list[tuple[str, str]]]:
    names = [net.ns(f"r{i}") for i in range(count)]
    ends: list[tuple[str, str]] = []
    peers: dict[int, list[str]] = {i: [] for i in range(count)}
    for i in range(count):
        j = (i + 1) % count
        ifa, _, addr_a, _ = net.link(names[i], names[j])
        ends.append((names[i], ifa))
        peers[j].append(f"tcp://[{addr_a}]:9651")
    nodes = [net.start_node(ns, peers[i], "--disable-peer-discovery") for i, ns in enumerate(names)]
    for node in nodes:
        net.wait_tun(node)
    return nodes, ends


def test_ring_of_five_reroutes_around_a_cut_and_back(net: Network) -> None:
    nodes, ends = build_ring(net, 5)
    net.wait_ping(nodes[0].ns, nodes[2].address, timeout=30)
    # A node that dialled a neighbour before it listened redials on the next 5 s tick, so a link
    # may still be missing when n0 first reaches n2: every pair gets a few seconds to converge.
    failures = [
        (a.ns, b.address)
        for a, b in itertools.permutations(nodes, 2)
        if not wait_until(
            lambda a=a, b=b: net.ping(a.ns, b.address, count=1, wait=2), timeout=15, interval=0
        )
    ]
    assert failures == []
    # n0 -> n2 is 2 links one way round (via n1) and 3 the other (via n4, n3). Which one the
    # first flood picked depends on connection order; cut a link of the path in use.
    first = forward_links(net, nodes[0], nodes[2])
    assert first in (2, 3)
    other = 5 - first
    ns, ifname = ends[1] if first == 2 else ends[2]  # n1-n2 or n2-n3
    net.exec(ns, "ip", "link", "set", ifname, "down")
    cut = time.monotonic()
    # The TCP connection sees nothing; the neighbour is declared dead after 43-53 s without an
    # IHU, then the traffic (one ping a second) finds the way round.
    rerouted = wait_until(
        lambda: (
            net.ping(nodes[0].ns, nodes[2].address, wait=1)
            and forward_links(net, nodes[0], nodes[2], wait=1) == other
        ),
        timeout=90,
        interval=0,
    )
    assert rerouted, f"traffic never moved to the {other}-link path"
    assert time.monotonic() - cut < 90

    # Back up: the peer manager redials within 5 s; the node next to n2 learns it directly
    # (metric 0, a big change), and its triggered update moves traffic to the shorter path.
    net.exec(ns, "ip", "link", "set", ifname, "up")
    back = wait_until(lambda: forward_links(net, nodes[0], nodes[2], wait=1) == 2, timeout=40)
    assert back, "traffic is not on the shorter path after the link came back"
    assert all(node.proc is not None and node.proc.poll() is None for node in nodes)
