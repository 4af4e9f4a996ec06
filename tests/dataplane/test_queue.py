"""Packets waiting for a route: limits, release, loss, the 15 s timeout (docs/wire.md §5.2,
§5.4)."""

from __future__ import annotations

import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from dp_fakes import icmpv6_checksum_ok, identity, ipv6_packet, make_plane, parse_frame, take_frames
from mycelium.crypto import SharedKey, shared_secret
from mycelium.dataplane import PacketQueue
from mycelium.dataplane.queue import PACKET_OVERHEAD, SUBNET_OVERHEAD
from mycelium.subnet import Subnet
from mycelium.wire.packet import DataPacket

A, B, C = identity("queue a"), identity("queue b"), identity("queue c")


def test_reference_limits() -> None:
    pa, _ = make_plane(A)
    assert (pa.route_queue.max_per_subnet, pa.route_queue.max_total) == (10_000, 1_000_000)
    assert (pa.incoming_queue.max_per_subnet, pa.incoming_queue.max_total) == (100, 10_000)
    assert pa.route_queue.timeout == 15.0 and pa.incoming_queue.timeout == 15.0


def test_origin_packet_waits_for_route_then_is_sealed_and_sent() -> None:
    pa, ra = make_plane(A)
    packets = [ipv6_packet(A.address, B.address, hop=30, payload=bytes([i]) * 10) for i in range(3)]
    pa.from_tun(packets, now=0.0)
    assert take_frames(pa) == [] and pa.take_to_tun() == []
    assert pa.counters.queued == 3 and ra.requests
    assert pa.next_deadline() == 15.0
    ra.add(B, "nb")
    pa.route_changes([B.subnet], now=2.0)
    out = take_frames(pa)
    assert len(out) == 3
    key = SharedKey(shared_secret(B.secret, A.public_key))
    for (n, frame), original in zip(out, packets, strict=True):
        p = parse_frame(frame)
        assert n == "nb" and p.hop_limit == 29
        assert key.open(p.body)[4:] == original
    assert pa.next_deadline() is None and pa.queued == 0


def test_route_change_for_a_covering_prefix_releases_the_64() -> None:
    pa, ra = make_plane(A)
    pa.from_tun([ipv6_packet(A.address, B.address)], now=0.0)
    ra.add(B, "nb")
    pa.route_changes([Subnet.of(B.address, 48)], now=1.0)
    assert len(take_frames(pa)) == 1


def test_timeout_answers_no_route_from_the_packets_own_source() -> None:
    pa, _ = make_plane(A)
    packet = ipv6_packet(A.address, B.address, hop=30)
    pa.from_tun([packet], now=100.0)
    pa.tick(114.9)
    assert pa.take_to_tun() == []
    pa.tick(115.0)
    [reply] = pa.take_to_tun()
    assert reply[8:24] == A.address and reply[24:40] == A.address and reply[7] == 30
    assert reply[40:42] == b"\x01\x00" and reply[48:] == packet
    assert icmpv6_checksum_ok(reply)
    assert pa.counters.queue_timeout == 1 and pa.next_deadline() is None


def test_queued_messages_time_out_silently() -> None:
    pa, _ = make_plane(A)
    pa.send_message(B.address, b"m", now=0.0)
    pa.tick(15.0)
    assert pa.take_to_tun() == [] and pa.counters.queue_timeout == 1


def test_route_lost_drops_queue_with_icmp() -> None:
    pa, ra = make_plane(A)
    ra.add(B, "nb", selected=False)
    packet = ipv6_packet(A.address, B.address)
    pa.from_tun([packet], now=0.0)
    assert pa.counters.queued == 1
    pa.route_changes([B.subnet], now=1.0)  # still nothing selected: the route was lost
    [reply] = pa.take_to_tun()
    assert reply[41] == 0 and pa.counters.queue_route_lost == 1


def test_per_subnet_overflow_answers_immediately() -> None:
    queue = PacketQueue(max_per_subnet=3, max_total=100)
    pa, _ = make_plane(A, route_queue=queue)
    packets = [ipv6_packet(A.address, B.address, payload=bytes([i]) * 8) for i in range(5)]
    pa.from_tun(packets, now=0.0)
    replies = pa.take_to_tun()
    assert len(replies) == 2 and all(r[40:42] == b"\x01\x00" for r in replies)
    assert [r[48:] for r in replies] == packets[3:]
    assert pa.counters.queued == 3 and pa.counters.queue_full == 2
    # another /64 still has room
    pa.from_tun([ipv6_packet(A.address, C.address)], now=0.0)
    assert pa.take_to_tun() == [] and pa.counters.queued == 4


def test_total_overflow() -> None:
    queue = PacketQueue(max_per_subnet=10, max_total=2)
    pa, _ = make_plane(A, route_queue=queue)
    pa.from_tun([ipv6_packet(A.address, B.address), ipv6_packet(A.address, C.address)], now=0)
    pa.from_tun([ipv6_packet(A.address, identity("d").address)], now=0)
    assert len(pa.take_to_tun()) == 1 and pa.counters.queue_full == 1


def test_byte_bound() -> None:
    cost = 440 + PACKET_OVERHEAD  # a 400-byte payload plus its IPv6 header
    queue = PacketQueue(max_per_subnet=100, max_total=100, max_bytes=2 * cost + SUBNET_OVERHEAD)
    pa, _ = make_plane(A, route_queue=queue)
    pa.from_tun([ipv6_packet(A.address, B.address, payload=bytes(400)) for _ in range(3)], now=0)
    assert pa.counters.queued == 2 and pa.counters.queue_full == 1
    assert queue.bytes == 2 * cost + SUBNET_OVERHEAD


def test_the_byte_bound_counts_what_parked_packets_really_cost() -> None:
    """Tiny packets to many /64s (the reference counts only their payloads)."""
    budget = 4 * 1024 * 1024
    queue = PacketQueue(max_per_subnet=10_000, max_total=1_000_000, max_bytes=budget)
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for i in range(40_000):
        dst = (0x0400 << 112 | i << 64 | 1).to_bytes(16, "big")
        queue.add(Subnet.of(dst, 64), DataPacket(A.address, dst, 64, bytes(8)), 8, 0.0)
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert queue.full_global > 0 and queue.bytes <= budget
    assert after - before <= budget * 1.1


def test_transit_packet_is_queued_then_forwarded_with_a_second_decrement() -> None:
    pc, rc = make_plane(C)
    p = DataPacket(A.address, B.address, 10, bytes(64))
    pc.from_link([p], now=0.0)
    assert take_frames(pc) == [] and pc.counters.queued == 1 and B.subnet in rc.requests
    rc.add(B, "nb")
    pc.route_changes([B.subnet], now=1.0)
    [(n, frame)] = take_frames(pc)
    out = parse_frame(frame)
    assert n == "nb" and out.body == p.body
    assert out.hop_limit == 8  # the reference routes released packets through the step again


def test_transit_queue_overflow_sends_oob_and_timeout_is_silent() -> None:
    queue = PacketQueue(max_per_subnet=1, max_total=10)
    pc, rc = make_plane(C, route_queue=queue)
    rc.add(A, "na")
    pc.from_link([DataPacket(A.address, B.address, 10, bytes(64)) for _ in range(2)], now=0.0)
    [(n, oob)] = take_frames(pc)
    assert n == "na" and oob[24:40] == A.address
    pc.tick(15.0)
    assert pc.take_to_tun() == [] and take_frames(pc) == [] and pc.counters.queue_timeout == 1


def test_queue_deadline_is_per_subnet_from_first_packet() -> None:
    q = PacketQueue(10, 10, timeout=15.0)
    s1, s2 = Subnet.of(B.address, 64), Subnet.of(C.address, 64)
    assert q.add(s1, "x", 1, 0.0) and q.add(s1, "y", 1, 10.0) and q.add(s2, "z", 1, 5.0)
    assert q.next_deadline() == 15.0
    assert q.expire(14.0) == []
    assert q.expire(15.0) == [(s1, ["x", "y"])]
    assert q.next_deadline() == 20.0
    assert q.take(s2) == ["z"] and q.next_deadline() is None and len(q) == 0 and q.bytes == 0
    # re-created subnets get a fresh deadline; the stale heap entry is ignored
    assert q.add(s1, "w", 1, 30.0)
    assert q.expire(44.0) == [] and q.next_deadline() == 45.0


def test_next_deadline_covers_both_queues() -> None:
    pa, _ = make_plane(A)
    pa.from_link([DataPacket(B.address, A.address, 10, bytes(64))], now=3.0)  # parked: no key
    pa.from_tun([ipv6_packet(A.address, C.address)], now=5.0)  # parked: no route
    assert pa.next_deadline() == 18.0
    pa.tick(18.0)
    assert pa.next_deadline() == 20.0
    pa.tick(20.0)
    assert pa.next_deadline() is None and pa.queued == 0


def test_message_to_our_own_subnet_is_handed_back_locally() -> None:
    pa, ra = make_plane(A)
    pa.send_message(A.address, b"loop", now=0.0)
    assert pa.take_messages() == [(A.address, A.address, b"loop")]
    assert take_frames(pa) == [] and ra.route_calls == 0


OPS = st.tuples(st.sampled_from(["add", "take", "expire"]), st.integers(0, 3), st.integers(0, 50))


@given(st.lists(OPS, max_size=60))
def test_queue_accounting_invariants(ops: list[tuple[str, int, int]]) -> None:
    q = PacketQueue(max_per_subnet=4, max_total=9, max_bytes=200, timeout=15.0)
    subnets = [Subnet(i << 64, 64) for i in range(4)]
    now = 0.0
    for op, index, size in ops:
        now += 1.0
        if op == "add":
            q.add(subnets[index], size, size, now)
        elif op == "take":
            q.take(subnets[index])
        else:
            q.expire(now + size)
        lists = q._lists
        assert q.total == sum(len(v) for v in lists.values()) <= 9
        assert q.bytes == sum(s for v in lists.values() for s, _ in v) <= 200
        assert all(len(v) <= 4 for v in lists.values())
        deadline = q.next_deadline()
        assert deadline == (min(q._deadlines.values()) if lists else None)
