"""Replay protection: a copy of a delivered packet is dropped, within the documented window."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from dp_fakes import identity, ipv6_packet, make_plane
from mycelium.crypto import SharedKey, shared_secret
from mycelium.dataplane.replay import ReplayWindow
from mycelium.wire.packet import DataPacket

A, B, C = identity("replay a"), identity("replay b"), identity("replay c")
KEY_AB = SharedKey(shared_secret(A.secret, B.public_key))


def l3(payload: bytes = b"ping") -> DataPacket:
    inner = ipv6_packet(A.address, B.address, payload=payload)
    return DataPacket(A.address, B.address, 10, KEY_AB.seal(b"\x01\x00\x00\x00" + inner))


def message(text: bytes) -> DataPacket:
    return DataPacket(A.address, B.address, 10, KEY_AB.seal(b"\x01\x01\x00\x00" + text))


def receiver():  # type: ignore[no-untyped-def]
    plane, router = make_plane(B)
    router.add(A, "na")
    return plane


def test_a_replayed_message_and_echo_are_delivered_once() -> None:
    """The attack: an on-path node sends captured frames again, in the same batch or later."""
    plane = receiver()
    echo, msg = l3(b"echo request"), message(b"hello")
    plane.from_link([echo, msg, echo], now=0.0)
    plane.from_link([msg, echo], now=1.0)
    plane.from_link([echo], now=20.0)
    assert len(plane.take_to_tun()) == 1
    assert len(plane.take_messages()) == 1
    assert plane.replay.replayed == 4


def test_replay_under_another_source_address_of_the_same_64_is_caught() -> None:
    """Addresses are not authenticated and every address of a /64 opens with the same key."""
    plane = receiver()
    p = l3()
    moved = DataPacket(A.address[:8] + os.urandom(8), p.dst, p.hop_limit, p.body)
    plane.from_link([p], now=0.0)
    plane.from_link([moved], now=0.5)
    assert len(plane.take_to_tun()) == 1


def test_a_replay_waiting_for_the_senders_route_is_caught_when_released() -> None:
    plane, router = make_plane(B)
    p = l3()
    plane.from_link([p, p], now=0.0)  # no route to A yet: both parked in the incoming queue
    router.add(A, "na")
    plane.route_changes([A.subnet], now=1.0)
    assert len(plane.take_to_tun()) == 1 and plane.replay.replayed == 1


def test_forgeries_take_no_place_in_the_window() -> None:
    plane = receiver()
    good = l3()
    forged = [DataPacket(A.address, B.address, 10, os.urandom(80)) for _ in range(5000)]
    plane.from_link([good, *forged], now=0.0)
    assert len(plane.replay) == 1
    plane.from_link([good], now=1.0)
    assert plane.replay.replayed == 1 and len(plane.take_to_tun()) == 1


def test_distinct_packets_are_never_mistaken_for_replays() -> None:
    plane = receiver()
    for i in range(30):
        plane.from_link([l3(bytes([i])) for _ in range(100)], now=i * 1.5)
    assert plane.counters.delivered == 3000 and plane.replay.replayed == 0


def test_the_batch_loop_finds_copies_in_both_generations() -> None:
    plane = receiver()
    plane.replay = ReplayWindow(generation_size=4)
    packets = [l3(bytes([i])) for i in range(6)]
    plane.from_link(packets, now=0.0)  # the 4th fills a generation: 0-3 previous, 4-5 current
    plane.from_link([packets[0], packets[5], packets[1], l3(b"new")], now=1.0)
    assert plane.replay.replayed == 3 and plane.counters.delivered == 7


def test_window_limits_are_what_the_docs_say() -> None:
    """Caught within GENERATION_SECONDS; forgotten after two generations; bounded per source."""
    window = ReplayWindow(generation_size=100, generation_seconds=30.0, max_sources=4)
    src, nonce = A.address, os.urandom(12)
    assert not window.seen(src, nonce, 0.0)
    assert window.seen(src, nonce, 29.9)
    assert window.seen(src, nonce, 59.0)  # the generation rotated: still in the previous one
    assert not window.seen(src, nonce, 120.0)  # both generations are gone: it gets through
    # per source: never more than two generations, however many packets
    for _ in range(10_000):
        window.seen(src, os.urandom(12), 121.0)
    assert len(window) <= 2 * 100
    # at least GENERATION_SIZE packets back are still remembered
    recent = [os.urandom(12) for _ in range(100)]
    for nonce in recent:
        window.seen(src, nonce, 122.0)
    assert all(window.seen(src, nonce, 122.0) for nonce in recent)


def test_sources_are_bounded_and_the_stalest_goes_first() -> None:
    window = ReplayWindow(generation_size=10, generation_seconds=30.0, max_sources=3)
    first = os.urandom(12)
    window.seen(A.address, first, 0.0)
    window.seen(B.address, os.urandom(12), 10.0)
    window.seen(C.address, os.urandom(12), 20.0)
    others = [bytes([0x04, i]) + bytes(14) for i in range(50)]
    for i, other in enumerate(others):
        window.seen(other, os.urandom(12), 21.0 + i)
    assert window.sources == 3
    assert not window.seen(A.address, first, 80.0)  # A was pushed out: documented limit
    assert window.evicted_sources > 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), st.floats(0, 1)), max_size=200))
def test_bounded_for_any_sequence(events: list[tuple[int, int, float]]) -> None:
    window = ReplayWindow(generation_size=8, generation_seconds=1.0, max_sources=2)
    now = 0.0
    for source, nonce, step in events:
        now += step
        window.seen(bytes([4, source]) + bytes(14), bytes([nonce]) * 12, now)
    assert window.sources <= 2
    assert len(window) <= 2 * 2 * 8
