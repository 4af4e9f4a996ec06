"""The message engine on a virtual clock, between two engines joined by a hostile channel."""

from __future__ import annotations

import heapq
import itertools
import os
import random

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mycelium.messages import MessageEngine, State, TopicConfig
from mycelium.messages import engine as eng
from mycelium.subnet import Subnet
from mycelium.wire import message as wire

A_IP = bytes.fromhex("04960b18c3a920a75ffcf64f14cc002d")
B_IP = bytes.fromhex("0514d8f2e497c1d2e3c99e4094d5d9f0")
A_PK, B_PK = b"A" * 32, b"B" * 32


def state(engine: MessageEngine, message_id: bytes) -> State | None:
    status = engine.status(message_id)
    return None if status is None else status.state


class Channel:
    """Delivers with loss, duplication, reordering (random delay) in both directions."""

    def __init__(
        self,
        seed: int = 0,
        loss: float = 0.0,
        dup: float = 0.0,
        delay: tuple[float, float] = (0.005, 0.005),
    ) -> None:
        self.rng = random.Random(seed)
        keys = {A_IP: A_PK, B_IP: B_PK}
        rand = random.Random(seed + 1)
        self.a = MessageEngine(A_IP, A_PK, keys.get, random_bytes=rand.randbytes)
        self.b = MessageEngine(B_IP, B_PK, keys.get, random_bytes=rand.randbytes)
        self.loss, self.dup, self.delay = loss, dup, delay
        self.now = 0.0
        self.events: list[tuple[float, int, bytes, bytes, bytes]] = []
        self.seq = itertools.count()
        self.sent: list[bytes] = []

    def engines(self) -> dict[bytes, MessageEngine]:
        return {A_IP: self.a, B_IP: self.b}

    def flush(self) -> None:
        for src, engine in self.engines().items():
            for dst, payload in engine.take_outgoing():
                self.sent.append(payload)
                copies = 2 if self.rng.random() < self.dup else 1
                for _ in range(copies):
                    if self.rng.random() < self.loss:
                        continue
                    at = self.now + self.rng.uniform(*self.delay)
                    heapq.heappush(self.events, (at, next(self.seq), src, dst, payload))

    def run(self, until: float) -> None:
        while True:
            self.flush()
            next_event = self.events[0][0] if self.events else float("inf")
            next_timer = min(self.a.next_deadline(), self.b.next_deadline())
            t = min(next_event, next_timer)
            if t > until:
                break
            self.now = t
            if next_event <= next_timer:
                _, _, src, dst, payload = heapq.heappop(self.events)
                self.engines()[dst].handle(src, dst, payload, t)
            else:
                for e in (self.a, self.b):
                    if e.next_deadline() <= t:
                        e.tick(t)
        self.now = until


def test_packet_layouts() -> None:
    mid = bytes.fromhex("0123456789abcdef")
    init = wire.MessagePacket(mid, wire.FLAG_INIT, wire.init_body(3_432_634_632, b"chat"))
    assert (
        init.encode().hex()
        == "0123456789abcdef80000000" + "00000000cc99d908" + "04" + b"chat".hex()
    )
    assert wire.decode(init.encode()).init() == wire.Init(3_432_634_632, b"chat")
    chunk = wire.MessagePacket(mid, wire.FLAG_CHUNK, wire.chunk_body(2, 2600, b"xyz"))
    assert chunk.encode()[8:12] == b"\x10\x00\x00\x00"
    assert wire.decode(chunk.encode()).chunk() == wire.Chunk(2, 2600, 3, b"xyz")
    ack = wire.chunk_ack_body(wire.decode(chunk.encode()).chunk())
    assert len(ack) == 24
    done = wire.MessagePacket(mid, wire.FLAG_DONE | wire.FLAG_ACK, wire.done_body(3, bytes(32)))
    assert done.encode()[8:10] == b"\x41\x00" and len(done.encode()) == 12 + 40
    assert wire.MessagePacket(mid, wire.FLAG_READ).encode() == mid + b"\x08\x00\x00\x00"
    for bad in (b"", b"\x00" * 11):
        with pytest.raises(wire.MalformedPacket):
            wire.decode(bad)
    with pytest.raises(wire.MalformedPacket):
        wire.MessagePacket(mid, wire.FLAG_INIT, b"\x00" * 8).init()


@given(st.binary(max_size=200))
def test_decoding_any_bytes_never_raises_untyped(blob: bytes) -> None:
    engine = MessageEngine(B_IP, B_PK, lambda ip: A_PK)
    engine.handle(A_IP, B_IP, blob, 0.0)
    engine.tick(1.0)


def test_small_message_is_delivered_once_and_read() -> None:
    ch = Channel()
    mid = ch.a.push(B_IP, b"hello", ch.now, topic=b"greet")
    ch.run(1.0)
    assert state(ch.a, mid) is State.RECEIVED
    got = ch.b.pop()
    assert got is not None and got.data == b"hello" and got.topic == b"greet"
    assert got.src_ip == A_IP and got.src_pk == A_PK and got.dst_pk == B_PK
    assert ch.b.pop() is None
    ch.run(2.0)
    assert state(ch.a, mid) is State.READ


def test_empty_message() -> None:
    ch = Channel()
    ch.a.push(B_IP, b"", ch.now)
    ch.run(1.0)
    got = ch.b.pop()
    assert got is not None and got.data == b""


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6000), st.floats(0, 0.3), st.floats(0, 0.3))
def test_loss_duplication_reordering_deliver_exactly_once(
    seed: int, size: int, loss: float, dup: float
) -> None:
    ch = Channel(seed, loss=loss, dup=dup, delay=(0.001, 0.2))
    data = random.Random(seed).randbytes(size)
    mid = ch.a.push(B_IP, data, ch.now)
    ch.run(120.0)
    got = ch.b.pop()
    assert got is not None and got.id == mid and got.data == data
    assert ch.b.pop() is None
    assert state(ch.a, mid) in (State.RECEIVED, State.READ)


def test_one_megabyte_with_heavy_loss() -> None:
    ch = Channel(7, loss=0.2, dup=0.05, delay=(0.001, 0.05))
    data = os.urandom(1 << 20)
    ch.a.push(B_IP, data, ch.now)
    ch.run(60.0)
    got = ch.b.pop()
    assert got is not None and blake3.blake3(got.data).digest() == blake3.blake3(data).digest()


def test_unreachable_destination_is_aborted_at_the_deadline() -> None:
    ch = Channel(loss=1.0)
    mid = ch.a.push(B_IP, b"x" * 5000, ch.now)
    ch.run(299.0)
    assert state(ch.a, mid) is State.INIT
    ch.run(301.0)
    assert state(ch.a, mid) is State.ABORTED
    assert wire.decode(ch.sent[-1]).has(wire.FLAG_ABORTED)
    ch.run(601.0)
    assert ch.a.status(mid) is None


def test_replies_go_to_the_waiting_sender() -> None:
    ch = Channel()
    mid = ch.a.push(B_IP, b"question", ch.now, subscribe=True)
    ch.run(1.0)
    question = ch.b.pop()
    assert question is not None
    ch.b.reply(question.id, question.src_ip, b"answer", ch.now)
    ch.run(2.0)
    (reply,) = ch.a.take_replies()
    assert reply.id == mid and reply.is_reply and reply.data == b"answer"
    assert ch.a.pop() is None
    # Without a waiting sender a reply lands in the inbox.
    mid2 = ch.a.push(B_IP, b"q2", ch.now)
    ch.run(3.0)
    ch.b.reply(mid2, A_IP, b"a2", ch.now)
    ch.run(4.0)
    assert ch.a.take_replies() == []
    got = ch.a.pop()
    assert got is not None and got.data == b"a2" and got.is_reply


def test_topic_filters_peek_and_acl() -> None:
    ch = Channel()
    ch.a.push(B_IP, b"one", ch.now, topic=b"t1")
    ch.a.push(B_IP, b"two", ch.now, topic=b"t2")
    ch.run(1.0)
    peeked = ch.b.pop(topic=b"t2", peek=True)
    assert peeked is not None and peeked.data == b"two"
    assert ch.b.pop(topic=b"t2").data == b"two"  # type: ignore[union-attr]
    assert ch.b.pop(topic=b"t2") is None
    assert ch.b.pop().data == b"one"  # type: ignore[union-attr]

    ch.b.topics.add_topic(b"secret")  # configured with no allowed sources
    mid = ch.a.push(B_IP, b"denied", ch.now, topic=b"secret")
    ch.run(5.0)
    assert ch.b.pop() is None and ch.b.counters.rejected_by_topic > 0
    assert state(ch.a, mid) is State.INIT
    ch.b.topics.add_source(b"secret", Subnet.of(A_IP, 64))
    ch.run(6.0)  # the INIT is retransmitted and now accepted
    assert ch.b.pop(topic=b"secret").data == b"denied"  # type: ignore[union-attr]
    ch.b.topics.accept_by_default = False
    ch.a.push(B_IP, b"nope", ch.now, topic=b"other")
    ch.run(8.0)
    assert ch.b.pop() is None


def test_forward_socket_topics_are_handed_to_the_runtime() -> None:
    ch = Channel()
    ch.b.topics.set_forward_socket(b"rpc", "/run/x.sock")  # unknown topic: ignored
    assert ch.b.topics.forward_socket(b"rpc") is None
    ch.b.topics.add_source(b"rpc", Subnet.parse("400::/7"))
    ch.b.topics.set_forward_socket(b"rpc", "/run/x.sock")
    ch.a.push(B_IP, b"call", ch.now, topic=b"rpc")
    ch.run(1.0)
    ((message, path),) = ch.b.take_forwards()
    assert path == "/run/x.sock" and message.data == b"call"
    assert ch.b.pop() is None


def _init(message_id: bytes, length: int) -> bytes:
    return wire.MessagePacket(message_id, wire.FLAG_INIT, wire.init_body(length, b"")).encode()


def _source(i: int) -> bytes:
    """An address in the i-th /64 of 400::/7 (a distinct sending key each)."""
    return (0x0400 << 112 | i << 64 | 1).to_bytes(16, "big")


def test_memory_bounds_against_a_flood() -> None:
    engine = MessageEngine(B_IP, B_PK, lambda ip: A_PK)
    engine.handle(A_IP, B_IP, _init(b"\x01" * 8, 1 << 62), 0.0)
    assert engine.counters.rejected_too_large == 1 and engine.take_outgoing() == []
    # One sender gets its share of the pending slots; its further INITs are not acknowledged.
    for i in range(1_100):
        engine.handle(A_IP, B_IP, _init(i.to_bytes(8, "big"), 1), 0.0)
    acked = engine.take_outgoing()
    assert len(acked) == eng.MAX_PENDING_PER_SOURCE
    assert engine.counters.rejected_sender_busy == 1_100 - eng.MAX_PENDING_PER_SOURCE
    # Many senders fill the whole table, and no further.
    for i in range(2_000):
        engine.handle(_source(i), B_IP, _init(b"s" + i.to_bytes(7, "big"), 10), 0.0)
    assert len(engine._pending) == eng.MAX_PENDING_MESSAGES
    # Declared bytes are reserved: two 64 MiB messages per sender, 256 MiB in all.
    big = eng.MAX_MESSAGE_SIZE
    fresh = MessageEngine(B_IP, B_PK, lambda ip: A_PK)
    for i in range(3):
        fresh.handle(A_IP, B_IP, _init(b"b" + i.to_bytes(7, "big"), big), 0.0)
    assert fresh._pending_bytes == 2 * big and fresh.counters.rejected_sender_busy == 1
    for i in range(10):
        fresh.handle(_source(i), B_IP, _init(b"c" + i.to_bytes(7, "big"), big), 0.0)
    assert fresh._pending_bytes == eng.MAX_PENDING_BYTES
    # Silent pending messages go after a minute (checked once a minute).
    engine.tick(0.0)
    engine.tick(eng.PENDING_IDLE_TIMEOUT + 61)
    assert not engine._pending and engine.counters.idle_dropped == eng.MAX_PENDING_MESSAGES
    assert engine._per_source == {}


def test_overlapping_chunks_store_no_more_than_the_declared_length() -> None:
    engine = MessageEngine(B_IP, B_PK, lambda ip: A_PK)
    engine.handle(A_IP, B_IP, _init(b"z" * 8, 1000), 0.0)
    for index in range(4):
        chunk = wire.MessagePacket(
            b"z" * 8, wire.FLAG_CHUNK, wire.chunk_body(index, 0, b"q" * 1000)
        )
        engine.handle(A_IP, B_IP, chunk.encode(), 0.0)
    assert engine._pending[b"z" * 8].stored == 1000


def test_a_legitimate_message_completes_while_one_sender_floods_inits() -> None:
    ch = Channel()
    attacker = _source(77)
    for i in range(1_100):
        ch.b.handle(attacker, B_IP, _init(b"x" + i.to_bytes(7, "big"), 1), ch.now)
    ch.b.take_outgoing()
    mid = ch.a.push(B_IP, b"hello" * 300, ch.now)
    ch.run(ch.now + 2.0)
    assert state(ch.a, mid) is State.RECEIVED
    got = ch.b.pop()
    assert got is not None and got.data == b"hello" * 300


def test_packets_naming_a_message_count_only_from_its_peer() -> None:
    ch = Channel()
    mid = ch.a.push(B_IP, b"payload" * 400, ch.now)
    intruder = _source(5)
    # An ACK from a third node does not advance the sender.
    forged = wire.MessagePacket(mid, wire.FLAG_INIT | wire.FLAG_ACK, wire.init_body(2800, b""))
    ch.a.handle(intruder, A_IP, forged.encode(), ch.now)
    assert state(ch.a, mid) is State.INIT
    assert ch.a.counters.wrong_peer == 1
    # The real exchange starts; a third node's chunk for the same id is ignored and counted.
    ch.run(ch.now + 0.007)  # b holds the INIT; its ACK is on the way back
    assert mid in ch.b._pending
    bogus = wire.MessagePacket(mid, wire.FLAG_CHUNK, wire.chunk_body(0, 0, b"!" * 1300))
    ch.b.handle(intruder, B_IP, bogus.encode(), ch.now)
    assert ch.b.counters.wrong_peer == 1
    ch.run(ch.now + 2.0)
    got = ch.b.pop()
    assert got is not None and got.data == b"payload" * 400


def test_bad_checksum_is_not_delivered() -> None:
    ch = Channel()
    mid = ch.a.push(B_IP, b"payload", ch.now)
    ch.flush()
    # Let INIT and CHUNK through, then forge a DONE with a wrong checksum.
    ch.run(0.5)
    ch.b._pending[mid] = ch.b._pending.get(mid) or eng._Pending(mid, False, A_IP, B_IP, 7, b"", 0)
    assert ch.b.pop() is not None  # the honest DONE already completed it
    forged = wire.MessagePacket(b"f" * 8, wire.FLAG_INIT, wire.init_body(3, b"")).encode()
    ch.b.handle(A_IP, B_IP, forged, 1.0)
    ch.b.handle(
        A_IP,
        B_IP,
        wire.MessagePacket(b"f" * 8, wire.FLAG_CHUNK, wire.chunk_body(0, 0, b"abc")).encode(),
        1.0,
    )
    ch.b.handle(
        A_IP,
        B_IP,
        wire.MessagePacket(b"f" * 8, wire.FLAG_DONE, wire.done_body(1, bytes(32))).encode(),
        1.0,
    )
    assert ch.b.counters.bad_checksums == 1 and ch.b.pop() is None


def test_status_shape_while_sending() -> None:
    ch = Channel(delay=(0.5, 0.5))
    mid = ch.a.push(B_IP, os.urandom(5000), ch.now)
    ch.run(1.2)  # INIT acked at 1.0, chunks in flight
    status = ch.a.status(mid, clock_offset=1_700_000_000)
    assert status is not None and status.length == 5000 and status.state is State.IN_PROGRESS
    assert status.progress is not None
    progress = status.progress
    assert progress.pending + progress.sent + progress.acked == len(eng.chunk_layout(5000))
    assert status.deadline - status.created == 300 and status.created >= 1_700_000_000
    assert status.dst == B_IP


def test_topics_config() -> None:
    config = TopicConfig()
    config.add_source(b"t", Subnet.parse("400::/7"))
    assert config.topics() == [b"t"] and config.allowed(b"t", A_IP)
    config.remove_source(b"t", Subnet.parse("400::/7"))
    assert not config.allowed(b"t", A_IP)
    config.remove_topic(b"t")
    assert config.allowed(b"t", A_IP) and config.sources(b"t") is None


@pytest.mark.parametrize("size", [0, 1, 249, 250, 1300, 1301, 1549, 1550, 2600, 2700, 10_000])
def test_chunk_layout_suits_a_reference_receiver(size: int) -> None:
    layout = eng.chunk_layout(size)
    assert sum(n for _, n in layout) == size
    assert len(layout) == -(-size // eng.CHUNK_SIZE)  # the count a reference receiver expects
    assert all(o == sum(n for _, n in layout[:i]) for i, (o, _) in enumerate(layout))
    max_index = 0 if size == 0 else -(-size // eng.MINIMUM_CHUNK_SIZE) - 1
    for index, (_, n) in enumerate(layout):
        assert n >= eng.MINIMUM_CHUNK_SIZE or index == max_index or len(layout) == 1


def test_receiver_accepts_a_short_final_chunk_as_a_reference_sender_cuts_it() -> None:
    engine = MessageEngine(B_IP, B_PK, lambda ip: A_PK)
    data = os.urandom(1400)
    mid = b"r" * 8
    engine.handle(
        A_IP, B_IP, wire.MessagePacket(mid, wire.FLAG_INIT, wire.init_body(1400, b"")).encode(), 0.0
    )
    for index, offset in ((0, 0), (1, 1300)):
        body = wire.chunk_body(index, offset, data[offset : offset + 1300])
        engine.handle(A_IP, B_IP, wire.MessagePacket(mid, wire.FLAG_CHUNK, body).encode(), 0.0)
    done = wire.done_body(2, blake3.blake3(data).digest())
    engine.handle(A_IP, B_IP, wire.MessagePacket(mid, wire.FLAG_DONE, done).encode(), 0.0)
    got = engine.pop()
    assert got is not None and got.data == data


def test_topic_config_file() -> None:
    from mycelium.messages.topics import load_topic_config

    config = load_topic_config(
        """
default = "Reject"
chat = ["400::/7"]
"one host" = ["5ff::1"]

[rpc]
subnets = ["514:d8f2:e497:c1d2::/64"]
forward_socket = "/run/rpc.sock"
"""
    )
    assert not config.accept_by_default
    assert config.allowed(b"chat", A_IP) and not config.allowed(b"other", A_IP)
    assert config.sources(b"one host") == [Subnet.parse("5ff::1/128")]
    assert config.allowed(b"rpc", B_IP) and not config.allowed(b"rpc", A_IP)
    assert config.forward_socket(b"rpc") == "/run/rpc.sock"
    for bad in ('default = "Maybe"', "chat = 5", 'chat = ["nonsense"]', "= broken"):
        with pytest.raises(ValueError):
            load_topic_config(bad)


class KindChannel(Channel):
    """Drops the first ``drops`` packets of one kind and duplicates every later one of that kind,
    the duplicates arriving late (after everything else in flight)."""

    def __init__(self, kind: int, drops: int) -> None:
        super().__init__()
        self.kind, self.drops = kind, drops

    def flush(self) -> None:
        for src, engine in self.engines().items():
            for dst, payload in engine.take_outgoing():
                flags = wire.decode(payload).flags & ~wire.FLAG_REPLY
                if flags == self.kind:
                    if self.drops:
                        self.drops -= 1
                        continue
                    late = self.now + 0.5
                    heapq.heappush(self.events, (late, next(self.seq), src, dst, payload))
                at = self.now + 0.005
                heapq.heappush(self.events, (at, next(self.seq), src, dst, payload))


KINDS = {
    "init": wire.FLAG_INIT,
    "init-ack": wire.FLAG_INIT | wire.FLAG_ACK,
    "chunk": wire.FLAG_CHUNK,
    "chunk-ack": wire.FLAG_CHUNK | wire.FLAG_ACK,
    "done": wire.FLAG_DONE,
    "done-ack": wire.FLAG_DONE | wire.FLAG_ACK,
}


@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
@pytest.mark.parametrize("drops", [1, 3])
def test_each_packet_kind_lost_then_duplicated_late(kind: int, drops: int) -> None:
    ch = KindChannel(kind, drops)
    data = random.Random(kind).randbytes(4000)  # several chunks
    mid = ch.a.push(B_IP, data, ch.now)
    ch.run(30.0)
    assert ch.drops == 0, "the channel saw that kind of packet"
    got = ch.b.pop()
    assert got is not None and got.id == mid and got.data == data
    assert ch.b.pop() is None
    ch.run(60.0)
    assert ch.b.pop() is None
    assert state(ch.a, mid) is State.READ
