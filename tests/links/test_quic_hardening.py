"""QUIC under attack: a flood of Initials gets small Retries and leaves no state, handshakes in
progress are capped (in all and per source), and forgetting a link never scans them all."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time

import pytest
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection

from link_recorder import Recorder, wait_for
from mycelium.links import quic
from mycelium.links.endpoint import Endpoint
from mycelium.wire.packet import encode_control
from mycelium.wire.tlv import Hello


def initials(count: int, port: int) -> list[bytes]:
    """Client Initials, each for a new connection (a fresh random connection ID)."""
    config = QuicConfiguration(is_client=True, verify_mode=ssl.CERT_NONE)
    out = []
    for _ in range(count):
        conn = QuicConnection(configuration=config)
        conn.connect(("::1", port), now=0.0)
        out.append(conn.datagrams_to_send(now=0.0)[0][0])
    return out


async def test_an_initial_flood_gets_small_retries_and_a_member_still_connects() -> None:
    """The attack: 500 Initials/s kept every core busy, cost 288 MB and drew 2.45x their size
    in responses towards a spoofable source. Here 600 Initials as fast as one socket sends."""
    side, member_side = Recorder(), Recorder()
    server = await quic.listen("::1", 0, side, side.accepted, "server")
    member = await quic.listen("::1", 0, member_side, member_side.accepted, "member")
    flood = initials(600, server.port)
    attacker = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    attacker.bind(("::1", 0))
    attacker.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        sent = 0
        for datagram in flood:
            await loop.sock_sendto(attacker, datagram, ("::1", server.port))
            sent += len(datagram)
            if sent % 20 == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0.3)
        received = 0
        while True:
            try:
                received += len(attacker.recv(65536))
            except BlockingIOError:
                break
        assert received < 0.2 * sent, (received, sent)  # was 2.45x
        connections = {id(link) for link in server._links.values()}
        assert len(connections) <= quic.MAX_PENDING_HANDSHAKES  # was one per Initial
        assert server.retries_sent >= 590
        # A member dialling now is asked to retry too, and gets in.
        started = time.monotonic()
        link = await member.dial(Endpoint("quic", "::1", server.port), member_side)
        assert time.monotonic() - started < 3.0
        link.start()
        link.send(encode_control(Hello(1)))
        await wait_for(lambda: side.packets == [Hello(1)])
        link.close()
    finally:
        attacker.close()
        member.close()
        server.close()


async def test_handshakes_in_progress_are_capped_per_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six dials from one address that complete the handshake and the Retry but never open
    the control stream: at most MAX_PENDING_PER_SOURCE are ever held at once."""
    monkeypatch.setattr(quic, "HANDSHAKE_TIMEOUT", 1.5)
    side, far = Recorder(), Recorder()
    server = await quic.listen("::1", 0, side, side.accepted, "server")
    client = await quic.listen("::1", 0, far, far.accepted, "client")
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, server.pending.held)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        dials = [client.dial(Endpoint("quic", "::1", server.port), far) for _ in range(6)]
        results = await asyncio.gather(*dials, return_exceptions=True)
        assert most <= quic.MAX_PENDING_PER_SOURCE
        assert any(not isinstance(r, BaseException) for r in results)
        # silent ones are dropped at the handshake timeout and give their slots back
        await wait_for(lambda: server.pending.held == 0 and server.limits.held == 0, timeout=10)
        assert side.links == []
    finally:
        watcher.cancel()
        client.close()
        server.close()


async def test_forget_touches_only_the_links_own_connection_ids() -> None:
    side = Recorder()
    server = await quic.listen("::1", 0, side, side.accepted, "server")
    client = await quic.listen("::1", 0, side, side.accepted, "client")
    try:
        link = await client.dial(Endpoint("quic", "::1", server.port), side)

        class NoScan(dict):
            def items(self):  # type: ignore[no-untyped-def, override]
                raise AssertionError("forget() scanned every connection ID")

            def values(self):  # type: ignore[no-untyped-def, override]
                raise AssertionError("forget() scanned every connection ID")

        others = {bytes([i]) * 8: object() for i in range(200)}
        client._links = NoScan({**others, **{cid: link for cid in link.cids}})
        assert link.cids
        client.forget(link)
        assert dict.keys(client._links) == others.keys() and not link.cids
        client._links = {}
        link.close()
    finally:
        client.close()
        server.close()


async def test_a_flood_of_forged_gro_trains_is_dropped_and_the_link_goes_on() -> None:
    """GRO trains from a stranger, half of them carrying a live connection's ID: the forged
    ones die in that connection's decryption, the others find no connection, and nothing is
    kept (no link, no handshake, nothing queued on the link)."""
    from qh3._hazmat import UdpSocketState

    server_side, client_side = Recorder(), Recorder()
    server = await quic.listen("::1", 0, server_side, server_side.accepted, "server")
    client = await quic.listen("::1", 0, client_side, client_side.accepted, "client")
    attacker = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        link = await client.dial(Endpoint("quic", "::1", server.port), client_side)
        link.start()
        link.send(encode_control(Hello(1)))
        await wait_for(lambda: server_side.packets == [Hello(1)])
        (accepted,) = server_side.links
        cid = next(iter(accepted.cids))  # type: ignore[attr-defined]
        trains: list[int] = []
        receive = accepted.receive  # type: ignore[attr-defined]

        def record(data: bytes, addr: tuple, segment: int = 0) -> None:
            trains.append(segment)
            receive(data, addr, segment)

        accepted.receive = record  # type: ignore[attr-defined]
        attacker.bind(("::1", 0))
        attacker.setblocking(False)
        gso = UdpSocketState(attacker.fileno())
        target = ("::1", server.port, 0, 0)
        for round_ in range(60):
            head = bytes([0x41]) + (cid if round_ % 2 else os.urandom(8))
            gso.send([head + os.urandom(1191) for _ in range(40)], target)
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)
        assert any(trains)  # the flood went the train path, whole, to the live connection
        assert {id(found) for found in server._links.values()} == {id(accepted)}
        assert server.pending.held == 0 and not accepted._received  # type: ignore[attr-defined]
        link.send(encode_control(Hello(2)))
        await wait_for(lambda: server_side.packets == [Hello(1), Hello(2)])
        assert not server_side.closed
    finally:
        attacker.close()
        client.close()
        server.close()
