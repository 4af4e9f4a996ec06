"""A bulk TCP transfer between two of our nodes loses nothing at the sender's TUN.

The kernel queues what the sending host's TCP writes into the TUN for our node to read; a TCP
sender may keep far more packets below its socket than the kernel's default queue of 500 holds,
and whatever does not fit is dropped (counted as TX dropped on the TUN) and retransmitted by TCP.
This guards the cause, not a speed: the counters must not move during a transfer.
"""

from __future__ import annotations

import json

import pytest

from netns.harness import Network, NodeProcess, tcp_transfer

pytestmark = pytest.mark.netns

SIZE = 200 << 20


def tun_tx(net: Network, node: NodeProcess) -> tuple[int, int, int]:
    """(packets, dropped, queue length) of the node's TUN transmit side, as the kernel counts."""
    out = net.exec(node.ns, "ip", "-s", "-j", "link", "show", "dev", "mycelium")
    link = json.loads(out.stdout)[0]
    tx = link["stats64"]["tx"]
    return int(tx["packets"]), int(tx["dropped"]), int(link["txqlen"])


def test_bulk_transfer_over_a_tcp_link_has_no_tun_tx_drops(net: Network) -> None:
    a, b = net.ns("a"), net.ns("b")
    _, _, addr_a, _ = net.link(a, b)
    receiver = net.start_node(a, [], "--disable-peer-discovery")
    sender = net.start_node(b, [f"tcp://[{addr_a}]:9651"], "--disable-peer-discovery")
    net.wait_tun(receiver)
    net.wait_tun(sender)
    net.wait_ping(b, receiver.address, timeout=30)
    packets_before, dropped_before, queue = tun_tx(net, sender)
    sent, received = tcp_transfer(net, b, a, receiver.address, SIZE)
    packets_after, dropped_after, _ = tun_tx(net, sender)
    assert received == sent, "bytes or checksum differ"
    # The transfer really went through this TUN: at least one read per 1400-byte packet.
    assert packets_after - packets_before >= SIZE // 1400
    assert dropped_after - dropped_before == 0, (
        f"{dropped_after - dropped_before} of {packets_after - packets_before} packets dropped "
        f"at the sender's TUN (queue length {queue})"
    )
