"""Real nodes in a line of namespaces: reachability, a bulk TCP transfer, a --no-tun relay."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time

import pytest

from netns.harness import MYCELIUM, Network, NodeProcess, tcp_transfer

pytestmark = pytest.mark.netns


def build_line(net: Network, count: int, no_tun: set[int] = frozenset()) -> list[NodeProcess]:
    names = [net.ns(f"n{i}") for i in range(count)]
    nodes: list[NodeProcess] = []
    for i, ns in enumerate(names):
        peers = []
        if i > 0:
            _, _, left, _ = net.link(names[i - 1], ns)
            peers = [f"tcp://[{left}]:9651"]
        extra = ["--disable-peer-discovery"] + (["--no-tun"] if i in no_tun else [])
        nodes.append(net.start_node(ns, peers, *extra))
    for i, node in enumerate(nodes):
        if i in no_tun:
            net.wait_listening(node)
        else:
            net.wait_tun(node)
    return nodes


def test_line_of_four_every_node_pings_every_other(net: Network) -> None:
    nodes = build_line(net, 4)
    net.wait_ping(nodes[0].ns, nodes[3].address, timeout=30)
    failures = [
        (a.ns, b.address)
        for a, b in itertools.permutations(nodes, 2)
        if not net.ping(a.ns, b.address, count=1, wait=3)
    ]
    assert failures == []
    # Every node counted every node's packets by source and by destination (stats packets):
    # its own as originated, the others' as delivered or forwarded.
    addresses = {node.address for node in nodes}
    for node in nodes:
        out = net.exec(node.ns, MYCELIUM, "stats", "packets", "--json").stdout
        stats = json.loads(out)
        for direction in ("bySource", "byDestination"):
            counted = {e["ip"]: e for e in stats[direction] if e["ip"] in addresses}
            assert set(counted) == addresses, (node.ns, direction, stats)
            assert all(e["packetCount"] >= 1 and e["byteCount"] > 0 for e in counted.values())
    # The transit node's table names the pinging end with its count.
    table = net.exec(nodes[1].ns, MYCELIUM, "stats", "packets").stdout
    row = next(line for line in table.splitlines() if f"| {nodes[0].address} " in line)
    assert int(row.split("|")[2]) >= 2, table


def test_tcp_transfer_across_three_hops_arrives_intact(net: Network) -> None:
    nodes = build_line(net, 4)
    net.wait_ping(nodes[0].ns, nodes[3].address, timeout=30)
    sent, received = tcp_transfer(net, nodes[0].ns, nodes[3].ns, nodes[3].address, 20 << 20)
    assert received == sent, "bytes or checksum differ after 3 overlay hops"


def test_no_tun_node_in_the_middle_still_forwards(net: Network) -> None:
    nodes = build_line(net, 3, no_tun={1})
    net.wait_ping(nodes[0].ns, nodes[2].address, timeout=30)
    assert net.ping(nodes[2].ns, nodes[0].address, count=2, wait=3)
    # the relay has no TUN device at all
    out = net.exec(nodes[1].ns, "ip", "link", "show", "dev", "mycelium", check=False)
    assert out.returncode != 0


def test_a_pair_stopped_together_past_the_dead_threshold_keeps_its_link(net: Network) -> None:
    """Both nodes frozen at once (SIGSTOP, as a paused host or VM freezes them) for longer than
    the 10 s dead-neighbour threshold: neither sent a Hello meanwhile, so on waking neither
    blames the other's silence, and the link carries the next ping at once (docs/routing.md §2)."""
    nodes = build_line(net, 2)
    net.wait_ping(nodes[0].ns, nodes[1].address, timeout=30)
    pids = [node.proc.pid for node in nodes if node.proc is not None]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(14)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert net.ping(nodes[0].ns, nodes[1].address, count=1, wait=1)
    time.sleep(3)  # the checks after waking
    for node in nodes:
        log = node.log_file.read_text(errors="replace")
        assert "neighbour declared dead" not in log, node.log()
