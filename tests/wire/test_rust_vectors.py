"""Every byte vector of the reference's TLV unit tests (mycelium/src/babel/{hello,ihu,update,
route_request,seqno_request}.rs, v0.7.10), as values or as the refusal we chose instead.

Deliberate difference: the reference parses AE 1 (IPv4) prefixes in Update, Route Request and
SeqNo Request; Mycelium only routes inside 400::/7, so our decoder refuses them (the packet is
skipped and counted, docs/wire.md §10.7) and our encoder cannot produce them.
"""

from __future__ import annotations

import pytest

from mycelium.identity import RouterId
from mycelium.subnet import Subnet
from mycelium.wire.errors import MalformedPacket
from mycelium.wire.packet import encode_control
from mycelium.wire.stream import StreamDecoder
from mycelium.wire.tlv import (
    HELLO,
    IHU,
    ROUTE_REQUEST,
    SEQNO_REQUEST,
    UPDATE,
    Hello,
    Ihu,
    RouteRequest,
    SeqnoRequest,
    Tlv,
    Update,
    decode_tlv,
    encode_tlv,
)

# Ipv6Addr::new(512, 25, 26, 27, 28, 0, 0, 29) with a /64: only the first 8 bytes travel.
RUST_SUBNET = Subnet.parse("200:19:1a:1b:1c::1d/64")
LINK_LOCAL_64 = Subnet.parse("fe80::/64")


def rid(byte: int) -> RouterId:
    return RouterId(bytes([byte]) * 40)


def value_of(tlv: Tlv) -> bytes:
    encoded = encode_tlv(tlv)
    assert encoded[1] == len(encoded) - 2
    return encoded[2:]


# (tlv type, value bytes as in the Rust test, the value we decode and re-encode to the same bytes)
ENCODE_AND_DECODE = [
    (HELLO, [0, 0, 0, 25, 1, 144], Hello(25, 400, flags=0)),
    (HELLO, [128, 0, 0, 16, 15, 160], Hello(16, 4000)),
    (HELLO, [0b10000000, 0, 0, 19, 2, 1], Hello(19, 513)),
    (HELLO, [0, 0, 1, 19, 200, 100], Hello(275, 51300, flags=0)),
    (
        UPDATE,
        [2, 192, 64, 0, 1, 144, 0, 17, 0, 25, 2, 0, 0, 25, 0, 26, 0, 27] + [1] * 40,
        Update(RUST_SUBNET, 17, 25, rid(1), 400, 0xC0),
    ),
    (ROUTE_REQUEST, [2, 2, 64, 2, 0, 0, 25, 0, 26, 0, 27], RouteRequest(RUST_SUBNET, 2)),
    (ROUTE_REQUEST, [0, 0, 0], RouteRequest(None, 0)),
    (ROUTE_REQUEST, [12, 0, 0], RouteRequest(None, 12)),
    (
        ROUTE_REQUEST,
        [7, 2, 64, 0, 10, 0, 20, 0, 30, 0, 40],
        RouteRequest(Subnet.parse("a:14:1e:28::/64"), 7),
    ),
    (
        SEQNO_REQUEST,
        [2, 64, 0, 17, 64, 0] + [1] * 40 + [2, 0, 0, 25, 0, 26, 0, 27],
        SeqnoRequest(RUST_SUBNET, 17, rid(1), 64),
    ),
]


@pytest.mark.parametrize(("tlv_type", "value", "tlv"), ENCODE_AND_DECODE)
def test_rust_vectors_decode_and_encode_identically(
    tlv_type: int, value: list[int], tlv: Tlv
) -> None:
    raw = bytes(value)
    assert decode_tlv(tlv_type, raw) == tlv
    assert value_of(tlv) == raw
    assert encode_tlv(tlv)[0] == tlv_type


# Values the reference decodes but that Python never sends (addresses, AE 0/3 prefixes, flag bits).
DECODE_ONLY = [
    (HELLO, [0b10001001, 0, 0, 100, 1, 144], Hello(100, 400)),  # invalid flag bits masked off
    (HELLO, [0b00001001, 0, 0, 100, 1, 144], Hello(100, 400, flags=0)),
    (IHU, [0, 0, 0, 1, 1, 44], Ihu(1, 300)),
    (IHU, [1, 0, 0, 2, 0, 44, 3, 4, 5, 6], Ihu(2, 44)),  # IPv4 address: parsed, ignored
    (IHU, [2, 0, 0, 2, 0, 44, 4, 0, 0, 0, 0, 5, 0, 6, 7, 8, 9, 10, 11, 12, 13, 14], Ihu(2, 44)),
    (IHU, [3, 0, 1, 2, 0, 42, 7, 8, 9, 10, 11, 12, 13, 14], Ihu(258, 42)),
    (IHU, [1, 0, 0, 25, 1, 144, 1, 1, 1, 1], Ihu(25, 400)),  # the reference's IPv4 encoding
    (
        IHU,
        [2, 0, 0, 100, 15, 160, 0, 2, 0, 0, 4, 210, 9, 41, 13, 128, 17, 215, 22, 46, 0, 1],
        Ihu(100, 4000),
    ),
    (
        UPDATE,  # AE 0, plen 0: the ::/0 placeholder; flags 0x40 kept
        [0, 64, 0, 0, 0, 100, 0, 70, 2, 0] + [3] * 40,
        Update(Subnet(0, 0), 70, 512, rid(3), 100, 0x40),
    ),
    (
        UPDATE,  # AE 3: 8 bytes of the low half, fe80::/64 implied
        [3, 0, 64, 0, 3, 232, 0, 42, 3, 1, 0, 10, 0, 20, 0, 30, 0, 40] + [4] * 40,
        Update(LINK_LOCAL_64, 42, 769, rid(4), 1000, 0),
    ),
    (
        UPDATE,  # every flag bit set: only 0xC0 survives
        [3, 255, 64, 0, 3, 232, 0, 42, 3, 1, 0, 10, 0, 20, 0, 30, 0, 40] + [4] * 40,
        Update(LINK_LOCAL_64, 42, 769, rid(4), 1000, 0xC0),
    ),
    (ROUTE_REQUEST, [4, 3, 64, 0, 10, 0, 20, 0, 30, 0, 40], RouteRequest(LINK_LOCAL_64, 4)),
    (SEQNO_REQUEST, [0, 0, 0, 0, 1, 0] + [3] * 40, SeqnoRequest(Subnet(0, 0), 0, rid(3), 1)),
    (
        SEQNO_REQUEST,
        [3, 64, 0, 42, 232, 0] + [4] * 40 + [0, 10, 0, 20, 0, 30, 0, 40],
        SeqnoRequest(LINK_LOCAL_64, 42, rid(4), 232),
    ),
]


@pytest.mark.parametrize(("tlv_type", "value", "tlv"), DECODE_ONLY)
def test_rust_vectors_we_only_decode(tlv_type: int, value: list[int], tlv: Tlv) -> None:
    assert decode_tlv(tlv_type, bytes(value)) == tlv


REFUSED = [
    # The reference's own "decode_ignores_invalid_ae_encoding" / "invalid_hop_count" vectors.
    (IHU, [4, 0, 0, 2, 0, 44, 2, 0, 0, 0, 0, 5, 0, 6, 7, 8, 9, 10, 11, 12, 13, 14]),
    (
        UPDATE,
        [4, 0, 64, 0, 0, 44, 2, 0, 0, 10, 10, 5, 0, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
        + [17, 18]
        + [5] * 40,
    ),
    (ROUTE_REQUEST, [0, 4, 64, *range(6, 22)]),
    (SEQNO_REQUEST, [4, 64, 0, 0, 44, 0] + [5] * 40 + list(range(6, 22))),
    (SEQNO_REQUEST, [3, 64, 92, 0, 0, 0] + [4] * 40 + [0, 10, 0, 20, 0, 30, 0, 40]),
    # IPv4 (AE 1) prefixes: legal for the reference's parser, refused here (module docstring).
    (UPDATE, [1, 0, 23, 0, 2, 88, 0, 170, 1, 0, 10, 101, 4] + [2] * 40),
    (ROUTE_REQUEST, [3, 1, 32, 10, 101, 4, 1]),
    (ROUTE_REQUEST, [24, 1, 24, 10, 15, 19]),
    (SEQNO_REQUEST, [1, 32, 0, 170, 111, 0] + [2] * 40 + [10, 101, 4, 1]),
    # Constraint violations listed in docs/wire.md §10.7.
    (UPDATE, [2, 0, 129, 0, 0, 0, 0, 0, 0, 0] + [0] * 17 + [1] * 40),  # IPv6 plen > 128
    (UPDATE, [3, 0, 48, 0, 0, 0, 0, 0, 0, 0] + [0] * 8 + [1] * 40),  # AE 3 needs plen 64
    (UPDATE, [0, 0, 8, 0, 0, 0, 0, 0, 0, 0] + [1] * 40),  # AE 0 needs plen 0
    (SEQNO_REQUEST, [0, 8, 0, 0, 1, 0] + [1] * 40),  # AE 0 needs plen 0
    (ROUTE_REQUEST, [0, 0, 64]),  # wildcard with a prefix length
    (ROUTE_REQUEST, [0, 0, 0, 0]),  # wildcard with a trailing byte
    (HELLO, [128, 0, 0, 1, 7, 208, 0]),  # length field disagrees with the 6 bytes a Hello has
    (IHU, [0, 0, 0, 1, 23, 112, 0, 0, 0, 0]),  # AE 0 but 4 address bytes
    (IHU, [2, 0, 0, 1, 23, 112, 1, 2, 3, 4]),  # AE 2 but only 4 address bytes
    (UPDATE, [2, 0, 64, 0, 117, 48, 0, 7, 0, 0] + [5] * 8 + [1] * 39),  # router ID 1 byte short
    (UPDATE, [2, 0, 64, 0, 117, 48, 0, 7, 0, 0] + [5] * 8 + [1] * 41),  # 1 byte too many
    (SEQNO_REQUEST, [2, 64, 0, 8, 64, 0] + [1] * 40 + [5] * 7),  # prefix 1 byte short
    (ROUTE_REQUEST, [0, 2]),  # shorter than its fixed fields
    (IHU, [0, 0, 0]),
    (UPDATE, [2, 0, 64]),
    (SEQNO_REQUEST, [2, 64, 0, 8, 64, 0] + [1] * 20),
    (1, [0, 0]),  # PadN: unknown to Mycelium
    (6, [0, 0] + [1] * 8),  # Router-Id TLV: unknown to Mycelium
]


@pytest.mark.parametrize(("tlv_type", "value"), REFUSED)
def test_refused_tlvs_are_typed_errors_and_cost_only_their_own_packet(
    tlv_type: int, value: list[int]
) -> None:
    raw = bytes(value)
    with pytest.raises(MalformedPacket):
        decode_tlv(tlv_type, raw)
    tlv = bytes((tlv_type, len(raw))) + raw
    frame = bytes.fromhex("01010000 2a03") + len(tlv).to_bytes(2, "big") + tlv
    before, after = encode_control(Ihu(5)), encode_control(Hello(6))
    decoder = StreamDecoder()
    assert decoder.feed(before + frame + after) == [Ihu(5), Hello(6)]
    assert decoder.dropped == 1 and decoder.last_error


@pytest.mark.parametrize(
    "tlv",
    [
        # The reference's round-trip tests, and codec_* tests of babel.rs.
        Hello(16, 400),
        Hello(15, 400),
        Ihu(16, 400),
        Ihu(27, 400),
        Update(Subnet.parse("21f:4025:abcd:dead::/64"), 10, 25, rid(6), 6400),
        Update(Subnet.parse("400:1:2:3::/64"), 16, 25, RouterId(bytes(range(1, 41))), 40000),
        RouteRequest(Subnet.parse("21f:4025:abcd:dead::/64"), 27),
        SeqnoRequest(Subnet.parse("21f:4025:abcd:dead::/64"), 64, rid(6)),
        SeqnoRequest(Subnet.parse("400:1:2:3::/64"), 16, RouterId(bytes(range(1, 41)))),
    ],
)
def test_rust_round_trips(tlv: Tlv) -> None:
    assert decode_tlv(encode_tlv(tlv)[0], encode_tlv(tlv)[2:]) == tlv
    frame = encode_control(tlv)
    assert frame[:6] == bytes.fromhex("01010000 2a03")
    assert int.from_bytes(frame[6:8], "big") == len(frame) - 8 == 2 + frame[9]
    assert StreamDecoder().feed(frame) == [tlv]


def test_the_encoder_masks_host_bits_and_flags() -> None:
    # docs/wire.md §10.1: we send masked prefixes; Subnet.of masks them.
    subnet = Subnet.of(bytes.fromhex("05ffffffffffffffffffffffffffffff"), 61)
    value = value_of(Update(subnet, 1, 2, rid(1)))
    assert value[10:18] == bytes.fromhex("05ffffffffffffff")[:7] + b"\xf8"
    assert value_of(Update(RUST_SUBNET, 1, 2, rid(1), flags=0xFF))[1] == 0xC0


@pytest.mark.parametrize("plen", [0, 1, 7, 8, 9, 63, 64, 65, 96, 120, 127, 128])
def test_every_prefix_length_has_ceil_plen_over_8_bytes(plen: int) -> None:
    subnet = Subnet.of(bytes.fromhex("0548c783d7ce74a39ba1a0cbae21338d"), plen)
    size = (plen + 7) // 8
    update = value_of(Update(subnet, 1, 2, rid(9)))
    assert len(update) == 10 + size + 40 and update[2] == plen
    assert update[10 : 10 + size] == subnet.prefix_bytes() and update[10 + size :] == rid(9)
    request = value_of(RouteRequest(subnet, 3))
    assert request == bytes((3, 2, plen)) + subnet.prefix_bytes()
    seqno = value_of(SeqnoRequest(subnet, 4, rid(9), 5))
    assert len(seqno) == 46 + size and seqno[:6] == bytes((2, plen, 0, 4, 5, 0))
    for tlv_type, value in ((UPDATE, update), (ROUTE_REQUEST, request), (SEQNO_REQUEST, seqno)):
        decoded = decode_tlv(tlv_type, value)
        assert decoded.subnet == subnet  # type: ignore[union-attr]


def test_python_never_sends_what_the_reference_cannot_parse() -> None:
    with pytest.raises(ValueError):
        encode_tlv(SeqnoRequest(RUST_SUBNET, 1, rid(1), hop_count=0))
    with pytest.raises(ValueError):
        encode_tlv(Update(Subnet(0, 129), 1, 2, rid(1)))
    with pytest.raises(TypeError):
        encode_tlv("hello")  # type: ignore[arg-type]
    # IHUs always go out as AE 0, length 6, whatever the values.
    assert encode_tlv(Ihu(0xFFFF, 0))[:4] == bytes((IHU, 6, 0, 0))


def test_decoded_update_fields_have_their_types_from_bytes_and_memoryviews() -> None:
    update = Update(Subnet.parse("548:c783:d7ce:74a3::/64"), 7, 9, rid(7), 30000, 0x80)
    value = encode_tlv(update)[2:]
    for raw in (value, memoryview(value), bytearray(value)):
        decoded = decode_tlv(UPDATE, raw)
        assert decoded == update and type(decoded.router_id) is RouterId  # type: ignore[union-attr]
        assert type(decoded.subnet) is Subnet and decoded.subnet.network == update.subnet.network  # type: ignore[union-attr]
        assert hash(decoded) == hash(update)
