"""When the node reads its TUN: not while every link is congested (Node._pace_tun: one neighbour
that stops reading cannot stall the node's traffic to the others), and at once after a link batch
delivered packets to it (the kernel may have answered them already)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import uvloop

from dp_fakes import FakeRouter, identity, ipv6_packet, make_plane, parse_frame, take_frames
from mycelium.crypto import KeyCache
from mycelium.dataplane import DataPlane
from mycelium.links.backlog import Backlog
from mycelium.node import Node, NodeConfig


class FakeLoop:
    def __init__(self) -> None:
        self.reading = True

    def add_reader(self, fd: int, callback: Any) -> None:
        assert not self.reading
        self.reading = True

    def remove_reader(self, fd: int) -> bool:
        assert self.reading
        self.reading = False
        return True

    def time(self) -> float:
        return 0.0

    def call_at(self, when: float, callback: Any) -> None:
        pass


class FakeLink:
    connection_id = "fake"

    def __init__(self) -> None:
        self.backlog = Backlog()
        self.last_data = 0.0
        self.sent: list[bytes] = []

    def send_data_batch(self, frames: list[bytes]) -> None:
        self.sent += frames


class FakeTun:
    """Hands out ``answers`` (what the kernel queued) and records every read and write."""

    def __init__(self, fd: int = 99) -> None:
        self.fd = fd
        self.answers: list[bytes] = []
        self.reads = 0
        self.written: list[bytes] = []

    def fileno(self) -> int:
        return self.fd

    def read_batch(self, max_packets: int) -> list[bytes]:
        self.reads += 1
        out, self.answers = self.answers[:max_packets], self.answers[max_packets:]
        return out

    def write_batch(self, packets: list[bytes], delivered: list[bytes], hops: list[int]) -> int:
        self.written += packets + [plain[4:] for plain in delivered]  # past the user header
        return len(packets) + len(delivered)


def test_the_tun_pauses_only_while_every_link_is_congested() -> None:
    node = Node(NodeConfig.loopback())
    loop = FakeLoop()
    node._loop = loop  # type: ignore[assignment]
    node.tun = FakeTun()  # type: ignore[assignment]
    a, b = FakeLink(), FakeLink()
    node.links.update((a, b))  # type: ignore[arg-type]
    node.link_pause_writing(a)  # type: ignore[arg-type]
    assert loop.reading  # b still takes traffic
    node.link_pause_writing(b)  # type: ignore[arg-type]
    assert not loop.reading
    node.link_pause_writing(b)  # type: ignore[arg-type]
    node.link_resume_writing(a)  # type: ignore[arg-type]
    assert loop.reading
    node.link_pause_writing(a)  # type: ignore[arg-type]
    assert not loop.reading
    node.link_closed(a, "gone")  # type: ignore[arg-type]
    assert not loop.reading  # the one link left is still congested
    node.link_resume_writing(b)  # type: ignore[arg-type]
    assert loop.reading


def test_the_tun_pauses_and_resumes_on_uvloop() -> None:
    """uvloop's ``remove_reader`` returns None where asyncio declares a bool: the compiled node
    (tests/test_compiled.py runs this file against it) must not take that for an error."""
    loop = uvloop.new_event_loop()
    readable, writable = os.pipe()
    try:
        node = Node(NodeConfig.loopback())
        node._loop = loop
        tun = FakeTun(readable)
        node.tun = tun  # type: ignore[assignment]
        loop.add_reader(readable, node._tun_readable)
        link = FakeLink()
        node.links.add(link)  # type: ignore[arg-type]
        os.write(writable, b"packet")  # the fake never drains it: readable until paused
        node.link_pause_writing(link)  # type: ignore[arg-type]
        loop.run_until_complete(asyncio.sleep(0.01))
        assert tun.reads == 0
        node.link_resume_writing(link)  # type: ignore[arg-type]
        loop.run_until_complete(asyncio.sleep(0.01))
        assert tun.reads > 0
    finally:
        loop.close()
        os.close(readable)
        os.close(writable)


def test_a_link_batch_delivered_to_the_tun_is_followed_by_a_read_of_its_answer() -> None:
    node = Node(NodeConfig.loopback())
    node._loop = FakeLoop()  # type: ignore[assignment]
    tun = FakeTun()
    node.tun = tun  # type: ignore[assignment]
    link = FakeLink()
    node.links.add(link)  # type: ignore[arg-type]
    # The node's data plane knows the peer's key through a stand-in router.
    peer = identity("peer")
    router = FakeRouter(node.identity)
    router.add(peer, link)
    node.dataplane = DataPlane(node.identity, router, KeyCache(node.identity.secret))  # type: ignore[arg-type]
    sender, sender_router = make_plane(peer)
    sender_router.add(node.identity, "to-node")

    def arriving(payload: bytes) -> list:  # type: ignore[type-arg]
        sender.from_tun([ipv6_packet(peer.address, node.identity.address, payload=payload)], 0.0)
        return [parse_frame(frame) for _, frame in take_frames(sender)]

    # The kernel answered the request inside the write: the answer leaves in the same call.
    tun.answers = [ipv6_packet(node.identity.address, peer.address, payload=b"answer")]
    node.link_packets(link, arriving(b"request"))  # type: ignore[arg-type]
    assert [p[40:] for p in tun.written] == [b"request"]
    assert tun.reads == 1 and not tun.answers
    assert len(link.sent) == 1
    assert parse_frame(link.sent[0]).dst == peer.address

    # A batch that wrote nothing to the TUN (a replayed packet is dropped) reads nothing.
    replayed = arriving(b"again")
    node.link_packets(link, replayed)  # type: ignore[arg-type]
    assert tun.reads == 2  # nothing was waiting, but the write was made
    node.link_packets(link, replayed)  # type: ignore[arg-type]
    assert tun.reads == 2 and len(tun.written) == 2

    # Nor while every link is congested (the TUN is not being read at all then).
    node.link_pause_writing(link)  # type: ignore[arg-type]
    tun.answers = [ipv6_packet(node.identity.address, peer.address, payload=b"later")]
    node.link_packets(link, arriving(b"third"))  # type: ignore[arg-type]
    assert len(tun.written) == 3 and tun.reads == 2 and tun.answers
