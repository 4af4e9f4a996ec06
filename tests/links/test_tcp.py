"""TCP links over loopback: framing both ways, counters, hostile bytes close only that link."""

from __future__ import annotations

import asyncio
import socket

import pytest

from link_recorder import wait_for
from mycelium.links import tcp
from mycelium.links.base import Link
from mycelium.links.endpoint import Endpoint
from mycelium.wire import DataPacket, Hello, Ihu, encode_control, encode_data
from mycelium.wire.stream import Packet


class Recorder:
    def __init__(self) -> None:
        self.packets: dict[Link, list[Packet]] = {}
        self.closed: dict[Link, str] = {}
        self.changed = asyncio.Event()

    def link_packets(self, link: Link, packets: list[Packet]) -> None:
        self.packets.setdefault(link, []).extend(packets)
        self.changed.set()

    def link_closed(self, link: Link, reason: str) -> None:
        self.closed[link] = reason
        self.changed.set()

    def link_pause_writing(self, link: Link) -> None: ...

    def link_resume_writing(self, link: Link) -> None: ...

    async def wait(self, predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def _pair(server_rec: Recorder, client_rec: Recorder):  # type: ignore[no-untyped-def]
    accepted: list[Link] = []

    def on_link(link: Link) -> None:
        accepted.append(link)
        link.start()

    server = await tcp.listen("::1", 0, server_rec, on_link)
    port = server.sockets[0].getsockname()[1]
    client = await tcp.dial(Endpoint("tcp", "::1", port), client_rec)
    client.start()
    client.send(encode_control(Hello(0)))  # a dialler speaks first: that opens the inbound link
    await server_rec.wait(lambda: accepted and server_rec.packets.get(accepted[0]))
    assert server_rec.packets.pop(accepted[0]) == [Hello(0)]
    return server, client, accepted[0]


async def test_frames_cross_in_both_directions_with_counters() -> None:
    srec, crec = Recorder(), Recorder()
    server, client, inbound = await _pair(srec, crec)
    try:
        data = encode_data(bytes(16), bytes(range(16)), 63, b"x" * 1000)
        client.send(encode_control(Hello(7)))
        client.send_data(data)
        inbound.send(encode_control(Ihu(42)))
        await srec.wait(lambda: len(srec.packets.get(inbound, [])) == 2)
        await crec.wait(lambda: len(crec.packets.get(client, [])) == 1)
        hello, packet = srec.packets[inbound]
        assert hello == Hello(7)
        assert isinstance(packet, DataPacket) and packet.body == b"x" * 1000
        assert crec.packets[client] == [Ihu(42)]
        assert client.tx_bytes == 32 + len(data) == inbound.rx_bytes
        assert inbound.static_cost == tcp.COST_IPV6
        assert client.connection_id.startswith("TCP [::1]:")
        assert "<->" in inbound.connection_id
    finally:
        client.close()
        server.close()


async def test_garbage_closes_only_that_link() -> None:
    srec, crec = Recorder(), Recorder()
    server, client, inbound = await _pair(srec, crec)
    port = server.sockets[0].getsockname()[1]
    raw = socket.create_connection(("::1", port))
    try:
        raw.sendall(b"\x07\x00\x00\x00garbage-garbage")
        # It never decoded a packet, so the owner never heard of it: the server just drops it.
        raw.settimeout(5)
        assert await asyncio.to_thread(raw.recv, 100) == b""
        assert srec.closed == {}
        # the good link still works after the bad one died
        client.send(encode_control(Hello(1)))
        await srec.wait(lambda: srec.packets.get(inbound) == [Hello(1)])
        assert inbound not in srec.closed
    finally:
        raw.close()
        client.close()
        server.close()


async def test_packets_held_until_start() -> None:
    srec, crec = Recorder(), Recorder()
    accepted: list[Link] = []
    server = await tcp.listen("::1", 0, srec, accepted.append)
    port = server.sockets[0].getsockname()[1]
    client = await tcp.dial(Endpoint("tcp", "::1", port), crec)
    try:
        client.send(encode_control(Hello(1)))
        await wait_for(lambda: accepted)
        accepted[0].send(encode_control(Hello(3)))
        await asyncio.sleep(0.1)
        assert crec.packets == {}
        client.start()
        assert crec.packets[client] == [Hello(3)]
    finally:
        client.close()
        server.close()


async def test_dial_refused_raises_oserror() -> None:
    sock = socket.socket(socket.AF_INET6)
    sock.bind(("::1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(OSError):
        await tcp.dial(Endpoint("tcp", "::1", port), Recorder())
