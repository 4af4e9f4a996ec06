"""ICMPv6 builder and checksum against an independent implementation; error rate limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dp_fakes import (
    icmpv6_checksum_ok,
    identity,
    ipv6_packet,
    make_plane,
    reference_checksum,
    take_frames,
)
from mycelium.checksum import checksum
from mycelium.crypto import SharedKey, shared_secret
from mycelium.dataplane import icmp
from mycelium.wire.packet import DataPacket

SRC = bytes.fromhex("04960b18c3a920a75ffcf64f14cc002d")
DST = bytes.fromhex("0514d8f2e497c1d2e3c99e4094d5d9f0")


@given(st.binary(max_size=3000))
def test_checksum_matches_reference(data: bytes) -> None:
    assert checksum(data) == reference_checksum(data)


def test_checksum_edge_cases() -> None:
    assert checksum(b"") == 0xFFFF == reference_checksum(b"")
    assert checksum(b"\xff\xff") == 0 == reference_checksum(b"\xff\xff")
    assert checksum(b"\x00\x00") == 0xFFFF


def test_known_echo_request_checksum() -> None:
    """The inner packet of docs/wire.md §3.6 is an echo request with checksum 0xba2c."""
    packet = icmp.icmpv6_packet(SRC, DST, 64, 128, 0, b"ping", rest=b"\x12\x34\x00\x01")
    assert packet.hex() == (
        "60000000000c3a4004960b18c3a920a75ffcf64f14cc002d"
        "0514d8f2e497c1d2e3c99e4094d5d9f08000ba2c1234000170696e67"
    )


@given(st.binary(max_size=2000), st.integers(0, 255), st.integers(0, 255))
def test_error_reply_is_bounded_and_valid(offending: bytes, kind: int, code: int) -> None:
    packet = icmp.error_reply(SRC, DST, 1, kind, code, offending)
    assert len(packet) <= 1280
    assert packet[48:] == offending[: icmp.MAX_QUOTE]
    assert icmpv6_checksum_ok(packet)


def test_a_flood_of_expiring_transit_packets_gets_rate_limited_errors() -> None:
    """RFC 4443 §2.4 (f): 10,000 packets with hop limit 1 in 2 s (virtual clock) from a source we
    know the key of: each would cost an encryption and a send; at most burst + rate * 2 are."""
    a, b, c = identity("rate a"), identity("rate b"), identity("rate c")
    plane, router = make_plane(c)
    router.add(a, "na")
    router.add(b, "nb")
    key = SharedKey(shared_secret(a.secret, b.public_key))
    inner = ipv6_packet(a.address, b.address)
    packet = DataPacket(a.address, b.address, 1, key.seal(b"\x01\x00\x00\x00" + inner))
    for i in range(100):
        plane.from_link([packet] * 100, now=i * 0.02)
    errors = [f for n, f in take_frames(plane) if n == "na"]
    assert plane.counters.hop_limit_expired == 10_000
    bound = icmp.ERROR_BURST + 2 * icmp.ERRORS_PER_SECOND
    assert icmp.ERROR_BURST <= len(errors) <= bound
    assert plane.counters.icmp_rate_limited == 10_000 - len(errors)


def test_local_errors_to_the_tun_are_rate_limited_too() -> None:
    a = identity("rate local")
    plane, _ = make_plane(a)
    own = ipv6_packet(a.address, a.address[:8] + bytes(7) + b"\x09")  # to our own /64
    plane.from_tun([own] * 5000, now=0.0)
    assert len(plane.take_to_tun()) == icmp.ERROR_BURST
    plane.from_tun([own] * 5000, now=1.0)
    assert len(plane.take_to_tun()) == icmp.ERRORS_PER_SECOND
    assert plane.counters.tun_local_unreachable == 10_000
