"""Real Node objects in one process over loopback TCP (no TUN): routing and message payloads."""

from __future__ import annotations

import asyncio

from mycelium.links.endpoint import Endpoint
from mycelium.node import Node, NodeConfig

config = NodeConfig.loopback


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def selected_subnets(node: Node) -> set:
    return {view.subnet for view in node.router.routes() if view.selected}


async def test_line_of_three_nodes_learns_all_subnets_and_carries_messages() -> None:
    async with Node(config()) as a:
        b_cfg = config([Endpoint("tcp", "::1", a.tcp_port)])
        async with Node(b_cfg) as b:
            c_cfg = config([Endpoint("tcp", "::1", b.tcp_port)])
            async with Node(c_cfg) as c:
                # b hears both ends directly; a learns c from b's triggered update. c joined
                # after a's announcement passed by: b sends it its selected routes on connect
                # (docs/routing.md §3.1).
                await wait_for(
                    lambda: {a.identity.subnet, c.identity.subnet} <= selected_subnets(b)
                )
                await wait_for(lambda: c.identity.subnet in selected_subnets(a))
                assert a.messages is not None and c.messages is not None
                await a.messages.push(c.identity.address, b"hello over 2 hops", b"t")
                got = await c.messages.pop(b"t", timeout=10)
                assert got is not None and got.data == b"hello over 2 hops"
                assert (got.src_ip, got.dst_ip) == (a.identity.address, c.identity.address)
                assert a.identity.subnet in selected_subnets(c)
                peers = a.peer_manager.peers()
                assert len(peers) == 1 and peers[0].rx_bytes > 0 and peers[0].tx_bytes > 0


async def test_link_loss_is_noticed_and_routes_withdrawn() -> None:
    async with Node(config()) as a:
        b = Node(config([Endpoint("tcp", "::1", a.tcp_port)]))
        await b.start()
        await wait_for(lambda: b.identity.subnet in selected_subnets(a))
        await b.stop()
        await wait_for(lambda: b.identity.subnet not in selected_subnets(a))
        assert not a.links


async def test_inbound_connections_beyond_the_configured_caps_are_refused_and_counted() -> None:
    cfg = config()
    cfg.max_inbound_per_source = 2
    async with Node(cfg) as a:
        held = [await asyncio.open_connection("::1", a.tcp_port) for _ in range(3)]
        try:
            await wait_for(lambda: a.stream_limits.refused_per_source == 1)
            # The refused one is closed at once; the two within the cap stay open.
            reader, _ = held[2]
            assert await asyncio.wait_for(reader.read(1), 5) == b""
            assert a.stream_limits.held == 2
        finally:
            for _, writer in held:
                writer.close()
