"""Bounded per-link send buffers: a peer that reads slowly or never costs a fixed amount of memory,
control frames are coalesced and go before data, and a link that stays stuck is closed."""

from __future__ import annotations

import asyncio
import os
import socket

from hypothesis import given
from hypothesis import strategies as st

from link_recorder import wait_for
from mycelium.identity import RouterId
from mycelium.links import backlog as backlog_module
from mycelium.links import tcp
from mycelium.links.backlog import Backlog, control_key
from mycelium.links.base import Link
from mycelium.subnet import Subnet
from mycelium.wire import DataPacket, Hello, Ihu, encode_control, encode_data
from mycelium.wire.stream import StreamDecoder
from mycelium.wire.tlv import RouteRequest, SeqnoRequest, Update

ROUTER = RouterId(bytes(range(40)))


def update(i: int, seqno: int = 1, metric: int = 100) -> bytes:
    prefix = Subnet.of(bytes([0x04, 0x00]) + i.to_bytes(6, "big") + bytes(8), 64)
    return encode_control(Update(prefix, seqno, metric, ROUTER))


def data(i: int, size: int = 1000) -> bytes:
    return encode_data(bytes(16), bytes(range(16)), 64, i.to_bytes(4, "big") * (size // 4))


# --- the backlog itself ------------------------------------------------------------------------
def test_updates_for_the_same_prefix_coalesce_to_the_latest() -> None:
    b = Backlog()
    for seqno in range(10):
        b.add_control(update(1, seqno=seqno))
    b.add_control(update(2))
    control, _ = b.take(1 << 30)
    assert control == [update(1, seqno=9), update(2)]
    assert b.coalesced == 9 and b.control_bytes == 0


def test_hello_and_ihu_keep_the_latest_requests_are_kept_once() -> None:
    b = Backlog()
    wildcard = encode_control(RouteRequest(None))
    seqno_request = encode_control(SeqnoRequest(Subnet.of(bytes([4]) + bytes(15), 64), 3, ROUTER))
    for i in range(5):
        b.add_control(encode_control(Hello(i)))
        b.add_control(encode_control(Ihu(i)))
        b.add_control(wildcard)
        b.add_control(seqno_request)
    control, _ = b.take(1 << 30)
    assert control == [encode_control(Hello(4)), encode_control(Ihu(4)), wildcard, seqno_request]


def test_limits_drop_the_newest_and_count_them() -> None:
    b = Backlog(control_limit=10 * len(update(0)), data_limit=5000)
    for i in range(100):
        b.add_control(update(i))
    b.add_data([data(i) for i in range(20)])
    assert b.control_bytes <= b.control_limit and b.dropped_control == 90
    assert b.data_bytes <= 5000 and b.dropped_data == 20 - b.data_bytes // len(data(0))


def test_take_gives_control_first_then_data_in_order() -> None:
    b = Backlog()
    b.add_data([data(i) for i in range(100)])
    for i in range(10):
        b.add_control(update(i))
    taken: list[bytes] = []
    kinds: list[str] = []
    while b:
        control, rest = b.take(4096)
        taken += control + rest
        kinds += ["c"] * len(control) + ["d"] * len(rest)
    assert kinds == ["c"] * 10 + ["d"] * 100
    assert taken[10:] == [data(i) for i in range(100)]
    assert b.control_bytes == 0 and b.data_bytes == 0


@given(st.binary(max_size=120))
def test_any_frame_has_a_key(frame: bytes) -> None:
    assert isinstance(control_key(frame), bytes)


# --- a real TCP link to a peer that never reads -----------------------------------------------
class Watcher:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.closed: list[str] = []

    def link_packets(self, link: Link, packets: list) -> None: ...

    def link_closed(self, link: Link, reason: str) -> None:
        self.events.append("closed")
        self.closed.append(reason)

    def link_pause_writing(self, link: Link) -> None:
        self.events.append("pause")

    def link_resume_writing(self, link: Link) -> None:
        self.events.append("resume")


async def _link_to_a_silent_peer(watcher: Watcher) -> tuple[tcp.TcpLink, socket.socket]:
    """Our dialled link, and the peer's accepted socket (which reads only when told to)."""
    listener = socket.socket(socket.AF_INET6)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # inherited on accept
    listener.bind(("::1", 0))
    listener.listen(1)
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    from mycelium.links.endpoint import Endpoint

    accept = loop.create_task(loop.sock_accept(listener))
    link = await tcp.dial(Endpoint("tcp", "::1", listener.getsockname()[1]), watcher)
    peer, _ = await accept
    listener.close()
    # Small kernel buffers and a 256 KiB high-water mark: congestion after a few hundred KB
    # instead of the ~12 MB loopback's autotuned buffers and the 4 MiB default would take.
    transport = link._transport
    assert transport is not None
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    transport.set_write_buffer_limits(high=256 * 1024)
    link.start()
    return link, peer


async def test_table_dumps_to_a_peer_that_never_reads_stay_bounded_and_the_link_closes() -> None:
    """The attack: every wildcard request makes us queue an Update per route (20,000 here) to a
    peer that never reads. 60 dumps are 93 MB; the link holds a fixed amount."""
    watcher = Watcher()
    link, peer = await _link_to_a_silent_peer(watcher)
    link.stuck_timeout = 1.0
    try:
        dump = [update(i) for i in range(20_000)]
        transport = link._transport
        assert transport is not None
        high = transport.get_write_buffer_limits()[1]
        for round_ in range(60):
            for frame in dump:
                link.send(frame)
            await asyncio.sleep(0)
            # bounded: the transport's high-water mark plus the backlog's own limit
            assert transport.get_write_buffer_size() <= high + len(dump[0])
            assert link.backlog.control_bytes <= backlog_module.CONTROL_BYTES
            if round_ == 0:
                assert watcher.events == ["pause"]
        assert link.backlog.coalesced > 50 * len(dump)  # later dumps replaced queued Updates
        await wait_for(lambda: "closed" in watcher.events, timeout=10)
        assert watcher.events == ["pause", "resume", "closed"]  # the TUN reader is given back
        assert "stopped reading" in watcher.closed[0]
    finally:
        peer.close()
        link.close()


async def test_a_slow_reader_is_not_closed_and_gets_control_before_held_data() -> None:
    watcher = Watcher()
    link, peer = await _link_to_a_silent_peer(watcher)
    link.stuck_timeout = 0.5
    try:
        frames = [data(i, 1400) for i in range(500)]  # 700 KB: congests the link
        link.send_data_batch(frames)
        assert watcher.events == ["pause"]
        link.send_data_batch([data(9999, 1400)])  # held behind...
        hello = encode_control(Hello(77))
        link.send(hello)  # ...but this control frame goes first
        peer.setblocking(False)
        decoder = StreamDecoder()
        got: list = []
        loop = asyncio.get_running_loop()

        async def read_some() -> None:
            chunk = await loop.sock_recv(peer, 256 * 1024)
            got.extend(decoder.feed(chunk))

        async with asyncio.timeout(30):
            while len(got) < 502:
                await read_some()
                await asyncio.sleep(0.05)  # a slow reader: still longer than the stuck check
        assert watcher.events == ["pause", "resume"]
        # Behind what the transport had taken before the congestion, ahead of the held data.
        assert got[500] == Hello(77)
        held = got[501]
        assert isinstance(held, DataPacket) and held.body[:4] == (9999).to_bytes(4, "big")
        assert link.backlog.dropped_data == 0 and link.backlog.dropped_control == 0
    finally:
        peer.close()
        link.close()


async def test_a_congested_link_that_closes_gives_the_pause_back() -> None:
    watcher = Watcher()
    link, peer = await _link_to_a_silent_peer(watcher)
    try:
        link.send_data_batch([data(i, 1400) for i in range(500)])
        assert watcher.events == ["pause"]
        peer.close()  # the peer goes away with our data unread
        link._fail("test")
        assert watcher.events == ["pause", "resume", "closed"]
    finally:
        link.close()


def test_random_frames_keep_the_backlog_within_its_limits() -> None:
    b = Backlog(control_limit=50_000, data_limit=20_000)
    for _ in range(3000):
        frame = os.urandom(int.from_bytes(os.urandom(1), "big") + 9)
        if frame[0] & 1:
            b.add_control(frame)
        else:
            b.add_data([frame])
        assert b.control_bytes <= 50_000 and b.data_bytes <= 20_000
    total = 0
    while b:
        control, rest = b.take(1000)
        total += len(control) + len(rest)
    assert b.control_bytes == 0 and b.data_bytes == 0 and total > 0
