"""Byte-exact encodings of every packet kind (docs/routing.md §12 items 1-9,
docs/wire.md §3.6, §4, §7, §10.8)."""

from __future__ import annotations

import hashlib

import pytest

from mycelium.identity import Identity, RouterId
from mycelium.subnet import Subnet
from mycelium.wire import userdata
from mycelium.wire.discovery import BEACON_SIZE, Beacon, is_link_local_source
from mycelium.wire.errors import FramingError, MalformedPacket
from mycelium.wire.packet import DataPacket, encode_control, encode_data
from mycelium.wire.stream import StreamDecoder, decode_packet
from mycelium.wire.tlv import (
    Hello,
    Ihu,
    RouteRequest,
    SeqnoRequest,
    Update,
    decode_tlv,
    encode_tlv,
)

PUB = bytes.fromhex("a47c1d6f2a15b2c670d3a88fbe0aeb301ced12f7bcb4c8e3aa877b20f8559c02")
RID = RouterId(PUB + b"\x00\x00" + bytes.fromhex("010203040506"))
SUBNET = Subnet.parse("548:c783:d7ce:74a3::/64")

CONTROL_VECTORS = [
    (Hello(5, 2000), "010100002a03000804068000000507d0"),
    (Hello(0, 2000), "010100002a03000804068000000007d0"),
    (Ihu(1010, 6000), "010100002a0300080506000003f21770"),
    (
        Update(SUBNET, 7, 0, RID, 30000),
        "010100002a03003c083a020040007530000700000548c783d7ce74a3" + RID.hex(),
    ),
    (
        Update(SUBNET, 7, 0xFFFF, RID, 30000),
        "010100002a03003c083a02004000753000" + "07ffff0548c783d7ce74a3" + RID.hex(),
    ),
    (RouteRequest(SUBNET, 0), "010100002a03000d090b0002400548c783d7ce74a3"),
    (RouteRequest(None, 0), "010100002a0300050903000000"),
    (
        SeqnoRequest(SUBNET, 8, RID, 64),
        "010100002a0300380a36024000084000" + RID.hex() + "0548c783d7ce74a3",
    ),
]


@pytest.mark.parametrize(("tlv", "hex_frame"), CONTROL_VECTORS)
def test_control_packets_encode_and_decode_exactly(tlv: object, hex_frame: str) -> None:
    frame = bytes.fromhex(hex_frame)
    assert encode_control(tlv) == frame  # type: ignore[arg-type]
    assert decode_packet(frame) == tlv


def test_rust_unit_test_update_vector() -> None:
    value = bytes.fromhex("02c040000190001100190200001900" + "1a001b") + b"\x01" * 40
    decoded = decode_tlv(8, value)
    assert decoded == Update(
        Subnet.parse("200:19:1a:1b::/64"), 17, 25, RouterId(b"\x01" * 40), 400, 0xC0
    )
    assert encode_tlv(decoded)[2:] == value


def test_update_sizes_follow_the_prefix_length() -> None:
    for plen, size in ((64, 58), (96, 62), (128, 66), (65, 59)):
        subnet = Subnet.of(bytes.fromhex("0548c783d7ce74a39ba1a0cbae21338d"), plen)
        encoded = encode_tlv(Update(subnet, 1, 2, RID))
        assert encoded[1] == size and len(encoded) == size + 2
        assert decode_tlv(8, encoded[2:]).subnet == subnet  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        (5, bytes.fromhex("04000000177000000000")),  # IHU with AE 4
        (9, bytes.fromhex("0004400548c783d7ce74a3")),  # route request with AE 4
        (8, bytes.fromhex("040040007530000700000548c783d7ce74a3") + RID),  # update AE 4
        (10, bytes.fromhex("0240000800" + "00") + RID + bytes(8)),  # seqno req. hop count 0
        (99, b""),  # unknown type
        (4, bytes(5)),  # Hello of the wrong length
        (8, bytes.fromhex("0200400175300007000005")),  # update, omitted != 0, truncated
    ],
)
def test_bad_tlvs_are_skipped_and_the_next_packet_still_decodes(bad: tuple[int, bytes]) -> None:
    tlv_type, value = bad
    with pytest.raises(MalformedPacket):
        decode_tlv(tlv_type, value)
    body = bytes((tlv_type, len(value))) + value
    frame = b"\x01\x01\x00\x00" + bytes((42, 3)) + len(body).to_bytes(2, "big") + body
    decoder = StreamDecoder()
    after = encode_control(Hello(9))
    assert decoder.feed(frame + after) == [Hello(9)]
    assert decoder.dropped == 1


def test_bad_babel_magic_or_version_skips_the_body() -> None:
    for header in (b"\x2b\x03", b"\x2a\x02"):
        frame = b"\x01\x01\x00\x00" + header + b"\x00\x08" + encode_tlv(Hello(1))
        assert StreamDecoder().feed(frame + encode_control(Hello(2))) == [Hello(2)]


def test_end_to_end_data_frame_vector() -> None:
    a = Identity.from_secret(hashlib.sha256(b"mycelium wire spec node A").digest())
    b = Identity.from_secret(hashlib.sha256(b"mycelium wire spec node B").digest())
    raw = bytes.fromhex(
        "0cd9c096dc99c42fabd97a871abdc3d6b5e1da8e8b4cc30b21232b062366f4bb3f27acbc7ab283731b1eff"
        "4b35948e331069a129e7a9a3f5d3bb65b851e9619bc384a804f4c34f0a000102030405060708090a0b"
    )
    frame = (
        bytes.fromhex(
            "010000000000543f04960b18c3a920a75ffcf64f14cc002d0514d8f2e497c1d2e3c99e4094d5d9f0"
        )
        + raw
    )
    assert len(frame) == 124
    assert encode_data(a.address, b.address, 63, raw) == frame
    (packet,) = StreamDecoder().feed(frame)
    assert packet == DataPacket(a.address, b.address, 63, raw)
    assert len(packet.body) == 84  # type: ignore[union-attr]


def test_data_bodies_over_65535_bytes_are_never_encoded() -> None:
    encode_data(bytes(16), bytes(16), 64, bytes(0xFFFF))
    with pytest.raises(ValueError):
        encode_data(bytes(16), bytes(16), 64, bytes(0x10000))


def test_outer_header_violations_are_fatal() -> None:
    for header in (b"\x02\x00\x00\x00", b"\x01\x02\x00\x00"):
        with pytest.raises(FramingError):
            StreamDecoder().feed(header + bytes(40))
    decoder = StreamDecoder()
    decoder.feed(encode_control(Hello(1))[:7])
    with pytest.raises(FramingError):
        decoder.finish()


def test_user_data_header() -> None:
    assert userdata.header(0) == b"\x01\x00\x00\x00"
    assert userdata.header(userdata.PAYLOAD_MESSAGE) == b"\x01\x01\x00\x00"
    assert userdata.header(userdata.PAYLOAD_ICMP) == b"\x01\x02\x00\x00"
    assert userdata.split(b"\x01\x02\x00\x00icmp") == (2, b"icmp")


def test_discovery_beacon() -> None:
    public_a = bytes.fromhex("ec9a8062589c14676c80b9f820673b0dc123f9f96fb11d07ac7d6b8a6c6a1011")
    rid = RouterId.generate(public_a, bytes.fromhex("0a0b0c0d0e0f"))
    beacon = Beacon(9651, rid).encode()
    assert len(beacon) == BEACON_SIZE == 50
    assert beacon.hex() == "6d7963656c69756d25b3" + public_a.hex() + "00000a0b0c0d0e0f"
    assert Beacon.decode(beacon) == Beacon(9651, rid)
    for bad in (beacon[:-1], b"Mycelium" + beacon[8:], beacon + b"\x00"):
        with pytest.raises(MalformedPacket):
            Beacon.decode(bad)
    assert is_link_local_source(bytes.fromhex("fe800000000000000000000000000001"))
    assert not is_link_local_source(bytes.fromhex("fe800000000000010000000000000001"))
