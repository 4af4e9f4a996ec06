"""The message bus's reserved topics, which carry the NAT exchange: served internally, never in
the inbox, outside the user's topic rules, small, rate-limited per source; topic queries."""

from __future__ import annotations

import pytest

from mycelium.messages import MessageEngine, TopicConfig, reserved
from mycelium.nat.protocol import TOPIC
from mycelium.ratelimit import KeyedRateLimiter
from mycelium.wire import message as wire

A_IP, B_IP = b"\x04" + bytes(15), b"\x05" + bytes(15)
KEYS = {A_IP: b"A" * 32, B_IP: b"B" * 32}


def engines(topics: TopicConfig | None = None) -> tuple[MessageEngine, MessageEngine]:
    counter = iter(range(1, 10**9))
    random = lambda n: next(counter).to_bytes(n, "big")  # noqa: E731
    a = MessageEngine(A_IP, KEYS[A_IP], KEYS.get, random_bytes=random)
    b = MessageEngine(B_IP, KEYS[B_IP], KEYS.get, random_bytes=random, topics=topics)
    return a, b


def deliver(a: MessageEngine, b: MessageEngine, now: float, rounds: int = 10) -> None:
    """Exchange packets until both are quiet (a lossless, instant channel)."""
    for _ in range(rounds):
        moved = False
        for src, engine, other in ((A_IP, a, b), (B_IP, b, a)):
            for dst, payload in engine.take_outgoing():
                moved = True
                other.handle(src, dst, payload, now)
        if not moved:
            return


def test_a_served_topic_goes_to_take_internal_not_the_inbox() -> None:
    reject_all = TopicConfig(accept_by_default=False)  # the user's rules do not apply
    a, b = engines(reject_all)
    b.reserved.serve(TOPIC)
    a.push(B_IP, b"offer", 0.0, topic=TOPIC)
    deliver(a, b, 0.0)
    (message,) = b.reserved.take_internal()
    assert (message.data, message.topic, message.src_ip) == (b"offer", TOPIC, A_IP)
    assert b.inbox_size == 0 and b.pop() is None
    a.push(B_IP, b"hello", 0.1, topic=b"chat")  # ordinary topics still obey the rules
    deliver(a, b, 0.1)
    assert b.counters.rejected_by_topic == 1


@pytest.mark.parametrize(
    ("topic", "size", "reply"),
    [
        (b"pymycelium.other/1", 10, False),  # reserved but not served
        (TOPIC, reserved.MAX_SIZE + 1, False),  # too large
        (TOPIC, 10, True),  # a reply on a reserved topic
    ],
)
def test_refused_reserved_messages(topic: bytes, size: int, reply: bool) -> None:
    a, b = engines()
    b.reserved.serve(TOPIC)
    a.push(B_IP, b"x" * size, 0.0, topic=topic, reply_to=b"r" * 8 if reply else None)
    deliver(a, b, 0.0)
    assert b.reserved.take_internal() == [] and b.inbox_size == 0
    assert b.counters.rejected_reserved >= 1


def test_reserved_messages_are_rate_limited_per_source() -> None:
    a, b = engines()
    b.reserved.serve(TOPIC)
    for i in range(reserved.BURST + 5):
        a.push(B_IP, bytes((i,)), 0.0, topic=TOPIC)
    deliver(a, b, 0.0, rounds=50)
    assert len(b.reserved.take_internal()) == reserved.BURST
    # Retransmitted INITs of an accepted message do not use up the budget, and time refills it.
    a.tick(0.1)
    deliver(a, b, 0.1, rounds=50)
    assert b.reserved.take_internal() == []
    a.push(B_IP, b"later", 2.0 / reserved.RATE, topic=TOPIC)
    deliver(a, b, 2.0 / reserved.RATE)
    assert [m.data for m in b.reserved.take_internal()] == [b"later"]


def test_topic_query_is_answered_only_for_served_topics() -> None:
    a, b = engines()
    a.query(B_IP, TOPIC)
    deliver(a, b, 0.0)
    assert a.reserved.take_answers() == []  # b does not serve it: silence, like the reference
    b.reserved.serve(TOPIC)
    a.query(B_IP, TOPIC)
    deliver(a, b, 0.0)
    assert a.reserved.take_answers() == [(B_IP, TOPIC)]


def test_unsolicited_query_answers_are_ignored() -> None:
    a, _ = engines()
    flags = wire.FLAG_TOPIC_QUERY | wire.FLAG_ACK
    a.handle(B_IP, A_IP, wire.MessagePacket(b"q" * 8, flags, TOPIC).encode(), 0.0)
    assert a.reserved.take_answers() == []
    a.query(B_IP, TOPIC)
    ((_, sent),) = a.take_outgoing()
    query_id = wire.decode(sent).id
    # The right id from another node, or for another topic: ignored too.
    a.handle(A_IP, A_IP, wire.MessagePacket(query_id, flags, TOPIC).encode(), 0.0)
    a.handle(B_IP, A_IP, wire.MessagePacket(query_id, flags, b"pymycelium.x").encode(), 0.0)
    assert a.reserved.take_answers() == []


def test_serve_refuses_ordinary_topics() -> None:
    a, _ = engines()
    with pytest.raises(ValueError):
        a.reserved.serve(b"chat")


def test_keyed_rate_limiter() -> None:
    limiter = KeyedRateLimiter(burst=2, rate=1.0, max_keys=2)
    assert [limiter.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("a", 1.0) and not limiter.allow("a", 1.0)
    assert limiter.refused == 2
    limiter.allow("b", 1.0)
    limiter.allow("c", 1.0)  # "a" is forgotten: it comes back with a full bucket
    assert limiter.allow("a", 1.0) and limiter.allow("a", 1.0)
    with pytest.raises(ValueError):
        KeyedRateLimiter(burst=0, rate=1.0)
