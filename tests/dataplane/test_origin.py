"""TUN acceptance checks (docs/wire.md §9.3), origin encryption and the vector of
docs/wire.md §3.6."""

from __future__ import annotations

import hashlib

import pytest

from dp_fakes import icmpv6_checksum_ok, identity, ipv6_packet, make_plane, parse_frame, take_frames
from mycelium.crypto import SharedKey, shared_secret
from mycelium.identity import Identity
from mycelium.wire.stream import StreamDecoder

A = Identity.from_secret(hashlib.sha256(b"mycelium wire spec node A").digest())
B = Identity.from_secret(hashlib.sha256(b"mycelium wire spec node B").digest())
VECTOR_INNER = bytes.fromhex(
    "60000000000c3a4004960b18c3a920a75ffcf64f14cc002d"
    "0514d8f2e497c1d2e3c99e4094d5d9f08000ba2c1234000170696e67"
)
VECTOR_FRAME = bytes.fromhex(
    "010000000000543f"
    "04960b18c3a920a75ffcf64f14cc002d"
    "0514d8f2e497c1d2e3c99e4094d5d9f0"
    "0cd9c096dc99c42fabd97a871abdc3d6b5e1da8e8b4cc30b21232b062366f4bb3f27acbc7ab283731b1eff4b35948e331069a129e7a9a3f5"
    "d3bb65b851e9619bc384a804f4c34f0a"
    "000102030405060708090a0b"
)


def fixed_nonces(n: int) -> bytes:
    return bytes(range(12)) * (n // 12)


def test_routed_packet_becomes_exactly_one_decryptable_frame() -> None:
    a, b = identity("a"), identity("b")
    plane, router = make_plane(a)
    router.add(b, "nb")
    packet = ipv6_packet(a.address, b.address, hop=40, payload=b"hello" * 10)
    plane.from_tun([packet], now=0.0)
    out = take_frames(plane)
    assert len(out) == 1
    neighbour, frame = out[0]
    assert neighbour == "nb"
    p = parse_frame(frame)
    assert (p.src, p.dst, p.hop_limit) == (a.address, b.address, 39)
    assert len(p.body) == len(packet) + 32
    key = SharedKey(shared_secret(b.secret, a.public_key))
    assert key.open(p.body) == b"\x01\x00\x00\x00" + packet
    assert plane.take_to_tun() == [] and plane.counters.sent == 1


def test_section_3_6_vector_is_reproduced_byte_for_byte() -> None:
    plane, router = make_plane(A, random_bytes=fixed_nonces)
    router.add(B, "nb")
    plane.from_tun([VECTOR_INNER], now=0.0)
    [(_, frame)] = take_frames(plane)
    assert frame == VECTOR_FRAME


def test_vector_delivered_to_direct_neighbour_with_hop_limit_62() -> None:
    """Checklist 16/17: 64 at the origin, 63 on the wire, 62 written into the inner header."""
    plane, router = make_plane(B)
    router.add(A, "na")
    decoder = StreamDecoder()
    packets = decoder.feed(VECTOR_FRAME)
    assert len(packets) == 1
    plane.from_link(packets, now=0.0)
    [delivered] = plane.take_to_tun()
    assert delivered[7] == 62
    assert delivered[:7] == VECTOR_INNER[:7] and delivered[8:] == VECTOR_INNER[8:]


def test_short_and_non_ipv6_packets_are_dropped_silently() -> None:
    a = identity("a")
    plane, _ = make_plane(a)
    v4 = bytes([0x45]) + bytes(59)
    plane.from_tun([b"", b"\x60" * 39, v4], now=0.0)
    assert plane.take_to_tun() == [] and take_frames(plane) == []
    assert plane.counters.tun_too_short == 2 and plane.counters.tun_not_ipv6 == 1


def test_oversize_packet_is_never_sent() -> None:
    a, b = identity("a"), identity("b")
    plane, router = make_plane(a)
    router.add(b, "nb")
    plane.from_tun([ipv6_packet(a.address, b.address, payload=bytes(1361))], now=0.0)
    assert take_frames(plane) == [] and plane.counters.tun_too_large == 1
    plane.from_tun([ipv6_packet(a.address, b.address, payload=bytes(1360))], now=0.0)
    assert len(take_frames(plane)) == 1


def test_destination_in_own_subnet_answers_address_unreachable() -> None:
    a = identity("a")
    plane, _ = make_plane(a)
    other_host = a.address[:8] + b"\x00" * 7 + b"\x09"
    src = identity("local host").address
    packet = ipv6_packet(src, other_host, payload=bytes(1300))
    plane.from_tun([packet], now=0.0)
    [reply] = plane.take_to_tun()
    assert reply[8:24] == a.address and reply[24:40] == src and reply[7] == 64
    assert reply[40:42] == b"\x01\x03"
    assert len(reply) == 1280 and reply[48:] == packet[:1232]
    assert icmpv6_checksum_ok(reply)
    assert plane.counters.tun_local_unreachable == 1


def test_source_outside_overlay_answers_code_5() -> None:
    a, b = identity("a"), identity("b")
    plane, router = make_plane(a)
    router.add(b, "nb")
    src = bytes.fromhex("20010db8000000000000000000000001")
    packet = ipv6_packet(src, b.address)
    plane.from_tun([packet], now=0.0)
    [reply] = plane.take_to_tun()
    assert reply[8:24] == a.address and reply[24:40] == src
    assert reply[40:42] == b"\x01\x05" and reply[48:] == packet
    assert icmpv6_checksum_ok(reply)
    assert take_frames(plane) == []


def test_check_order_own_subnet_before_bad_source() -> None:
    a = identity("a")
    plane, _ = make_plane(a)
    src = bytes.fromhex("20010db8000000000000000000000001")
    plane.from_tun([ipv6_packet(src, a.address)], now=0.0)
    [reply] = plane.take_to_tun()
    assert reply[41] == 3


def test_hop_limit_below_two_answers_time_exceeded_from_the_source() -> None:
    a, b = identity("a"), identity("b")
    plane, router = make_plane(a)
    router.add(b, "nb")
    for hop in (0, 1):
        packet = ipv6_packet(a.address, b.address, hop=hop)
        plane.from_tun([packet], now=0.0)
        [reply] = plane.take_to_tun()
        assert reply[8:24] == a.address and reply[24:40] == a.address
        assert reply[7] == hop and reply[40:42] == b"\x03\x00" and reply[48:] == packet
        assert icmpv6_checksum_ok(reply)
    plane.from_tun([ipv6_packet(a.address, b.address, hop=2)], now=0.0)
    [(_, frame)] = take_frames(plane)
    assert parse_frame(frame).hop_limit == 1


def test_message_is_sealed_with_type_1_and_hop_limit_63_on_the_wire() -> None:
    a, b = identity("a"), identity("b")
    plane, router = make_plane(a)
    router.add(b, "nb")
    plane.send_message(b.address, b"message payload", now=0.0)
    [(_, frame)] = take_frames(plane)
    p = parse_frame(frame)
    assert (p.src, p.dst, p.hop_limit) == (a.address, b.address, 63)
    key = SharedKey(shared_secret(b.secret, a.public_key))
    assert key.open(p.body) == b"\x01\x01\x00\x00message payload"


def test_message_received_goes_to_message_subsystem() -> None:
    a, b = identity("a"), identity("b")
    pa, ra = make_plane(a)
    pb, rb = make_plane(b)
    ra.add(b, "nb")
    rb.add(a, "na")
    pa.send_message(b.address, b"hi there", now=0.0)
    pb.from_link([parse_frame(f) for _, f in take_frames(pa)], now=0.0)
    assert pb.take_messages() == [(a.address, b.address, b"hi there")]
    assert pb.take_to_tun() == []


def test_oversize_message_is_refused() -> None:
    a, b = identity("a"), identity("b")
    plane, router = make_plane(a)
    router.add(b, "nb")
    plane.send_message(b.address, bytes(65535 - 32 + 1), now=0.0)
    assert take_frames(plane) == [] and plane.counters.message_too_large == 1
    plane.send_message(b.address, bytes(65535 - 32), now=0.0)
    [(_, frame)] = take_frames(plane)
    assert len(parse_frame(frame).body) == 65535


def test_frames_are_grouped_per_neighbour_in_order() -> None:
    a, b, c = identity("a"), identity("b"), identity("c")
    plane, router = make_plane(a)
    router.add(b, "nb")
    router.add(c, "nc")
    packets = [
        ipv6_packet(a.address, (b if i % 2 else c).address, payload=bytes([i]) * 8)
        for i in range(6)
    ]
    plane.from_tun(packets, now=0.0)
    out = take_frames(plane)
    assert [n for n, _ in out] == ["nc"] * 3 + ["nb"] * 3
    kb = SharedKey(shared_secret(b.secret, a.public_key))
    seen = [kb.open(parse_frame(f).body)[-1] for n, f in out if n == "nb"]
    assert seen == [1, 3, 5]
    assert take_frames(plane) == []


def test_buffer_types_other_than_bytes_are_accepted() -> None:
    a, b = identity("a"), identity("b")
    plane, router = make_plane(a)
    router.add(b, "nb")
    packet = ipv6_packet(a.address, b.address)
    plane.from_tun([bytearray(packet), memoryview(packet)], now=0.0)
    frames = take_frames(plane)
    key = SharedKey(shared_secret(b.secret, a.public_key))
    assert [key.open(parse_frame(f).body)[4:] for _, f in frames] == [packet, packet]


def test_message_destination_must_be_an_address() -> None:
    plane, _ = make_plane(identity("a"))
    with pytest.raises(ValueError):
        plane.send_message(b"\x04" * 4, b"x", now=0.0)
