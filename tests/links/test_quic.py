"""QUIC links between two in-process endpoints and between two nodes, over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from link_recorder import Recorder, wait_for
from mycelium.identity import node_subnet
from mycelium.links import quic, quic_link
from mycelium.links.endpoint import Endpoint
from mycelium.node import Node, NodeConfig
from mycelium.wire.packet import DataPacket, encode_control, encode_data
from mycelium.wire.tlv import Hello


@contextlib.asynccontextmanager
async def endpoints(
    server_side: Recorder, client_side: Recorder, host: str = "::1"
) -> AsyncIterator[tuple[quic.QuicEndpoint, quic.QuicEndpoint]]:
    """A listening endpoint for each side, both closed afterwards."""
    server = await quic.listen(host, 0, server_side, server_side.accepted, "server")
    try:
        client = await quic.listen(host, 0, client_side, client_side.accepted, "client")
        try:
            yield server, client
        finally:
            client.close()
    finally:
        server.close()


async def hello_link(
    server: quic.QuicEndpoint,
    client: quic.QuicEndpoint,
    server_side: Recorder,
    client_side: Recorder,
) -> quic_link.QuicLink:
    """A dialled, started link whose first control packet the server has delivered (so the
    server accepted and started its side)."""
    link = await client.dial(Endpoint("quic", "::1", server.port), client_side)
    link.start()
    link.send(encode_control(Hello(1)))
    await wait_for(lambda: server_side.packets == [Hello(1)])
    return link


async def test_control_on_the_stream_data_as_datagrams_and_big_data_on_the_stream() -> None:
    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, client):
        link = await client.dial(Endpoint("quic", "::1", server.port), client_side)
        link.start()
        assert link.connection_id == f"QUIC -> [::1]:{server.port}"
        link.send(encode_control(Hello(1)))
        small = encode_data(bytes(16), bytes(range(16)), 64, b"d" * 1300)
        big = encode_data(bytes(16), bytes(range(16)), 64, b"D" * 3000)
        link.send_data_batch([small, big])
        await wait_for(lambda: len(server_side.packets) == 3)
        # Stream and datagrams are not ordered with respect to each other (QUIC).
        assert Hello(1) in server_side.packets
        bodies = sorted(len(p.body) for p in server_side.packets if isinstance(p, DataPacket))
        assert bodies == [1300, 3000]
        # And back from the accepting side.
        (accepted,) = server_side.links
        accepted.send(encode_control(Hello(2)))
        accepted.send_data(small)
        await wait_for(lambda: len(client_side.packets) == 2)
        assert Hello(2) in client_side.packets
        assert any(isinstance(p, DataPacket) for p in client_side.packets)
        assert link.tx_bytes > 4000 and accepted.rx_bytes > 4000

        link.close()
        await wait_for(lambda: bool(server_side.closed))


async def test_big_frames_of_one_batch_reach_the_peer_in_order_on_the_stream() -> None:
    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, client):
        link = await client.dial(Endpoint("quic", "::1", server.port), client_side)
        link.start()
        bigs = [encode_data(bytes(16), bytes(range(16)), 64, bytes([i]) * 1500) for i in range(5)]
        small = encode_data(bytes(16), bytes(range(16)), 64, b"s" * 100)
        link.send_data_batch([bigs[0], small, *bigs[1:3]])
        link.send_data_batch(bigs[3:])
        await wait_for(lambda: len(server_side.packets) == 6)
        streamed = [p.body[0] for p in server_side.packets if p.body[0] != ord("s")]
        assert streamed == [0, 1, 2, 3, 4]
        assert link.tx_bytes == sum(map(len, [*bigs, small]))
        link.close()


async def test_dialling_nobody_fails_cleanly() -> None:
    side = Recorder()
    endpoint = await quic.listen("::1", 0, side, side.accepted, "lonely")
    try:
        quic.HANDSHAKE_TIMEOUT, saved = 0.5, quic.HANDSHAKE_TIMEOUT
        try:
            await endpoint.dial(Endpoint("quic", "::1", 9), side)
        except ConnectionError as exc:
            assert "handshake" in str(exc)
        else:
            raise AssertionError("dial should fail")
        finally:
            quic.HANDSHAKE_TIMEOUT = saved
    finally:
        endpoint.close()


async def test_a_dialler_that_never_opens_the_stream_is_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(quic, "HANDSHAKE_TIMEOUT", 0.5)
    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, client):
        link = await client.dial(Endpoint("quic", "::1", server.port), client_side)
        link.start()  # handshake done, but nothing is ever written on stream 0
        await wait_for(lambda: bool(client_side.closed))
        assert "control stream" in client_side.closed[0]
        assert server_side.links == [] and not server._links  # nothing kept, nothing admitted


config = NodeConfig.loopback


async def test_two_nodes_route_and_exchange_messages_over_quic() -> None:
    a = Node(config([]))
    await a.start()
    assert a.quic_port is not None
    b = Node(config([Endpoint("quic", "::1", a.quic_port)]))
    await b.start()
    try:
        a_subnet = node_subnet(a.identity.public_key)
        await wait_for(lambda: any(v.subnet == a_subnet and v.selected for v in b.router.routes()))
        (link,) = b.links
        assert link.protocol == "quic" and link.static_cost == quic_link.COST_IPV6
        assert b.messages is not None and a.messages is not None
        await b.messages.push(a.identity.address, b"x" * 5000, b"over-quic")
        got = await a.messages.pop(timeout=10)
        assert got is not None and got.data == b"x" * 5000
        peers = {p.kind.value for p in a.peer_manager.peers()}
        assert peers == {"inbound"}
    finally:
        await b.stop()
        await a.stop()


async def test_ipv4_peers_from_the_dual_stack_socket_cost_more() -> None:
    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side, "::") as (server, client):
        link = await client.dial(Endpoint.parse(f"quic://127.0.0.1:{server.port}"), client_side)
        link.start()
        assert link.static_cost == quic_link.COST_IPV4 == 12
        link.send(encode_control(Hello(5)))
        await wait_for(lambda: server_side.packets == [Hello(5)])
        (accepted,) = server_side.links
        assert accepted.static_cost == quic_link.COST_IPV4
        link6 = await client.dial(Endpoint.parse(f"quic://[::1]:{server.port}"), client_side)
        assert link6.static_cost == quic_link.COST_IPV6 == 7


async def test_a_silent_peer_is_detected_by_the_idle_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(quic_link, "IDLE_TIMEOUT", 0.5)
    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, client):
        link = await client.dial(Endpoint("quic", "::1", server.port), client_side)
        link.start()
        link.send(encode_control(Hello(1)))
        await wait_for(lambda: server_side.links)
        # The server vanishes without a word: it neither answers nor closes.
        monkeypatch.setattr(server, "_dispatch", lambda datagrams: None)
        monkeypatch.setattr(server, "datagram_received", lambda data, addr: None)
        monkeypatch.setattr(server, "sendto", lambda data, addr: None)
        monkeypatch.setattr(server, "send_batch", lambda datagrams, addr: None)
        await wait_for(lambda: bool(client_side.closed) and bool(server_side.closed), timeout=5)
        assert "idle" in client_side.closed[0].lower()


class Throttled(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def link_pause_writing(self, link: object) -> None:
        self.events.append("pause")

    def link_resume_writing(self, link: object) -> None:
        self.events.append("resume")


async def test_a_full_send_queue_pauses_the_producer_instead_of_dropping() -> None:
    server_side, client_side = Recorder(), Throttled()
    async with endpoints(server_side, client_side) as (server, client):
        link = await client.dial(Endpoint("quic", "::1", server.port), client_side)
        link.start()
        big = encode_data(bytes(16), bytes(range(16)), 64, b"B" * 3000)  # stream-borne
        frames = quic_link.HIGH_WATER // len(big) + 200
        link.send_data_batch([big] * frames)
        await wait_for(lambda: client_side.events == ["pause"])
        # Nothing was dropped: everything arrives, and the producer may go on once it drained.
        await wait_for(lambda: len(server_side.packets) == frames, timeout=60)
        await wait_for(lambda: client_side.events == ["pause", "resume"])


class CountingReads:
    """qh3's batched socket I/O, counting the reads that found nothing."""

    def __init__(self, batched: Any) -> None:
        self.batched = batched
        self.reads = self.empty = 0

    def recv(self) -> list:
        self.reads += 1
        try:
            datagrams = self.batched.recv()
        except BlockingIOError:
            self.empty += 1
            raise
        self.empty += not datagrams
        return datagrams

    def send(self, datagrams: list[bytes], addr: tuple) -> int:
        return int(self.batched.send(datagrams, addr))


async def test_one_read_per_wake_up_and_none_that_finds_the_socket_empty() -> None:
    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, client):
        link = await hello_link(server, client, server_side, client_side)
        assert server._batched is not None  # loaded with the first connection
        server._batched = counting = CountingReads(server._batched)
        request = encode_data(bytes(16), bytes(range(16)), 64, b"ping" * 20)
        for i in range(10):
            link.send_data(request)
            await wait_for(lambda n=i + 2: len(server_side.packets) == n)
        await asyncio.sleep(0.05)  # the client's last ACKs
        assert counting.reads >= 10 and counting.empty == 0


def recording_receives(link: quic_link.QuicLink) -> list[int]:
    """The segment size of every datagram or GRO train the endpoint gives ``link``."""
    segments: list[int] = []
    receive = link.receive

    def record(data: bytes, addr: tuple, segment: int = 0) -> None:
        segments.append(segment)
        receive(data, addr, segment)

    link.receive = record  # type: ignore[method-assign]
    return segments


async def test_bulk_is_read_as_gro_trains_each_taken_by_its_connection_whole() -> None:
    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, client):
        link = await hello_link(server, client, server_side, client_side)
        (accepted,) = server_side.links
        segments = recording_receives(accepted)  # type: ignore[arg-type]
        frames = [
            encode_data(bytes(16), bytes(range(16)), 64, i.to_bytes(2, "big") * 700)
            for i in range(600)
        ]
        for start in range(0, len(frames), 50):
            link.send_data_batch(frames[start : start + 50])
        await wait_for(lambda: len(server_side.packets) == 601, timeout=30)
        bodies = [p.body[:2] for p in server_side.packets if isinstance(p, DataPacket)]
        assert bodies == [i.to_bytes(2, "big") for i in range(600)]  # all of them, in order
        # The first bulk read was batched; the next wake-ups took trains of full-size datagrams.
        trains = [s for s in segments if s]
        assert trains and min(trains) >= 1200, segments


async def test_a_train_not_all_for_one_connection_is_split_into_datagrams() -> None:
    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, client):
        await hello_link(server, client, server_side, client_side)
        (accepted,) = server_side.links
        segments = recording_receives(accepted)  # type: ignore[arg-type]
        cid = next(iter(accepted.cids))  # type: ignore[attr-defined]
        ours, other = bytes([0x41]) + cid + bytes(40), bytes([0x41]) + bytes(8) + bytes(40)
        addr = ("::1", 1, 0, 0)
        server._dispatch_train(ours * 3, len(ours), addr)
        assert segments == [len(ours)]  # one piece
        server._dispatch_train(ours + other + ours, len(ours), addr)
        assert segments == [len(ours), 0, 0]  # ours one by one; the other is not its
        long_header = bytes([0xC1]) + cid + bytes(40)
        server._dispatch_train(ours + long_header, len(ours), addr)
        assert segments == [len(ours), 0, 0, 0]  # a long header is not taken as ours


def _short_headers_one_by_one(train: bytes, segment: int, cid: bytes) -> bool:
    datagrams = [train[i : i + segment] for i in range(0, len(train), segment)]
    return all(d[0] < 0x80 and d[1:9] == cid for d in datagrams)


#: A datagram of a train: ours (a short header and our CID), a long header with our CID, or a
#: short header whose CID differs from ours in one byte. Mostly ours, so that whole trains of
#: ours are common and a single near miss among them is what decides.
_KINDS = ["ours"] * 6 + ["long", "other"]


@given(
    cid=st.binary(min_size=8, max_size=8),
    kinds=st.lists(st.sampled_from(_KINDS), min_size=1, max_size=12),
    segment=st.integers(9, 40),
    last=st.integers(1, 40),
    data=st.data(),
)
def test_short_headers_to_answers_as_checking_each_datagram(
    cid: bytes, kinds: list[str], segment: int, last: int, data: Any
) -> None:
    """Strided slices across the train agree with checking every datagram on its own, for
    trains whose datagrams differ in the first byte, in one byte of the CID, or in length."""
    datagrams = []
    for kind in kinds:
        first = data.draw(st.integers(0x80, 0xFF) if kind == "long" else st.integers(0x40, 0x7F))
        own = bytearray(cid)
        if kind == "other":
            own[data.draw(st.integers(0, 7))] ^= data.draw(st.integers(1, 255))
        body = data.draw(st.binary(min_size=segment - 9, max_size=segment - 9))
        datagrams.append(bytes((first,)) + bytes(own) + body)
    train = b"".join(datagrams)[: (len(datagrams) - 1) * segment + min(last, segment)]
    expected = _short_headers_one_by_one(train, segment, cid)
    assert quic.short_headers_to(train, segment, cid) is expected


def test_gro_segment_reads_the_kernels_control_message() -> None:
    size = (1452).to_bytes(4, sys.byteorder)
    assert quic.gro_segment([(socket.SOL_UDP, quic._UDP_GRO, size)]) == 1452
    assert quic.gro_segment([(socket.IPPROTO_IPV6, 50, bytes(20))]) == 0  # packet info only
    assert quic.gro_segment([]) == 0


def test_outgoing_polls_the_core_without_the_packet_log_hooks_unless_a_log_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qh3.quic.connection import QuicConnection
    from qh3.quic.logger import QuicLogger

    parsed: list[str] = []
    monkeypatch.setattr(
        QuicConnection, "_log_packets", lambda self, event, data: parsed.append(event)
    )
    config = quic_link._configuration(is_client=True)
    quiet = quic_link._new_connection(config)
    quiet.connect(("::1", 9651), now=0.0)
    runs = quiet.outgoing(0.0)
    assert [to for to, _ in runs] == [("::1", 9651, 0, 0)]
    assert runs[0][1] and all(len(d) >= 1200 and d[0] & 0x80 for d in runs[0][1])  # Initials
    assert parsed == [] and quiet.outgoing(0.0) == []  # nothing more until an answer
    config.quic_logger = QuicLogger()
    logged = quic_link._new_connection(config)
    logged.connect(("::1", 9651), now=0.0)
    runs = logged.outgoing(0.0)
    assert runs and all(to == ("::1", 9651, 0, 0) for to, _ in runs)
    assert "packet_sent" in parsed


def test_outgoing_reports_a_failing_core_as_a_connection_error() -> None:
    class Broken:
        def poll_transmit(self, now: float) -> None:
            raise RuntimeError("core failed")

    conn = quic_link._new_connection(quic_link._configuration(is_client=True))
    conn.connect(("::1", 9651), now=0.0)
    conn._core = Broken()  # type: ignore[assignment]
    with pytest.raises(quic_link.QuicConnectionError):
        conn.outgoing(0.0)


async def test_a_read_goes_to_connections_by_their_id_and_the_rest_by_the_general_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Taker:
        def __init__(self) -> None:
            self.got: list[tuple[bytes, tuple]] = []

        def receive(self, data: bytes, addr: tuple) -> None:
            self.got.append((data, addr))

    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, _):
        taker, cid = Taker(), bytes(range(1, 9))
        server._links[cid] = taker  # type: ignore[assignment]
        general: list[bytes] = []
        monkeypatch.setattr(server, "datagram_received", lambda data, addr: general.append(data))
        a, b = ("::1", 1, 0, 0), ("::1", 2, 0, 0)
        short = b"\x41" + cid + b"x" * 30
        stranger = b"\x41" + bytes(8) + b"x" * 30
        initial = b"\xc0\x00\x00\x00\x01\x08" + cid + b"x" * 30  # a long header with our ID
        stun = b"\x00\x01" + bytes(30)
        server._dispatch([(short, a), (stun, a), (short, b), (stranger, a), (initial, a), (b"", a)])
        assert taker.got == [(short, a), (short, b)]
        assert general == [stun, stranger, initial, b""]
        del server._links[cid]  # not a link to close


async def test_a_batch_from_two_addresses_is_given_datagram_by_datagram() -> None:
    calls: list[tuple[str, object, tuple]] = []

    class Spy:
        def __init__(self, conn: Any) -> None:
            self._conn = conn

        def __getattr__(self, name: str) -> Any:
            return getattr(self._conn, name)

        def receive_many_datagrams(self, data: list[bytes], addr: tuple, now: float) -> None:
            calls.append(("many", list(data), addr))

        def receive_datagram(self, data: bytes, addr: tuple, now: float) -> None:
            calls.append(("one", data, addr))

    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, client):
        link = await client.dial(Endpoint("quic", "::1", server.port), client_side)
        link._conn = Spy(link._conn)  # type: ignore[assignment]
        a, b = ("::1", 1, 0, 0), ("::1", 2, 0, 0)
        link.receive(b"1", a)
        link.receive(b"2", a)
        link.receive_batch()
        link.receive(b"3", a)
        link.receive(b"4", b)
        link.receive_batch()
        assert calls == [("many", [b"1", b"2"], a), ("one", b"3", a), ("one", b"4", b)]
        assert client._touched == [link, link]  # each batch's first datagram enrolled it once
        client._touched.clear()
        link.close()


async def test_a_stream_that_breaks_framing_closes_the_link() -> None:
    server_side, client_side = Recorder(), Recorder()
    async with endpoints(server_side, client_side) as (server, client):
        link = await hello_link(server, client, server_side, client_side)
        good = encode_data(bytes(16), bytes(range(16)), 64, b"g" * 1500)
        # A frame, then bytes no frame starts with, in one write.
        link._conn.send_stream_data(quic_link.CONTROL_STREAM, good + b"\x09" * 40)
        link._transmit_soon()
        await wait_for(lambda: bool(server_side.closed))
        assert "framing error" in server_side.closed[0]
