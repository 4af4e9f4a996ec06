"""ICMPv6 builder and checksum against an independent implementation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dp_fakes import icmpv6_checksum_ok, reference_checksum
from mycelium.checksum import checksum
from mycelium.dataplane import icmp

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
