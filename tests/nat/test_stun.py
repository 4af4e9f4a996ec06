"""The STUN codec: RFC 5769's test vectors, round trips, integrity, and hostile bytes."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mycelium.nat import stun

# RFC 5769 §2.2 and RFC 5769 §2.3: Binding success responses from a server ("test vector"), with
# XOR-MAPPED-ADDRESS, a MESSAGE-INTEGRITY (HMAC-SHA1) and a FINGERPRINT.
RFC5769_IPV4 = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f722000200008"
    "0001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96"
)
RFC5769_IPV6 = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f722000200014"
    "0002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275"
    "bfe3ed4180280004c8fb0b4c"
)
RFC5769_PASSWORD = b"VOkJxbRl1RmTxUk/WvJxBt"

txids = st.binary(min_size=12, max_size=12)
ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6 = (
    st.integers(0, 2**128 - 1)
    .map(lambda n: ipaddress.IPv6Address(n))
    .filter(lambda a: a.ipv4_mapped is None)
)
hosts = ipv4 | ipv6.map(str)
ports = st.integers(1, 0xFFFF)


@pytest.mark.parametrize(
    ("vector", "expected"),
    [
        (RFC5769_IPV4, ("192.0.2.1", 32853)),
        (RFC5769_IPV6, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
    ],
)
def test_rfc5769_responses(vector: bytes, expected: tuple[str, int]) -> None:
    decoded = stun.decode(vector)  # the FINGERPRINT is checked on the way
    message = decoded.message
    assert (message.method, message.cls) == (stun.BINDING, stun.StunClass.SUCCESS)
    assert message.transaction_id == bytes.fromhex("b7e7a701bc34d686fa87dfae")
    assert message.get(stun.ATTR_SOFTWARE) == b"test vector"
    assert stun.mapped_address(message) == expected
    # Its HMAC-SHA1 integrity, which we do not use, is there: the bytes are the RFC's.
    assert len(message.get(stun.ATTR_MESSAGE_INTEGRITY) or b"") == 20


def test_rfc5769_message_integrity_layout_matches_ours() -> None:
    """Recompute the vector's HMAC-SHA1 the way we compute SHA-256 (length field adjusted to
    end after the integrity attribute): same layout rule, so ours is right too."""
    raw = RFC5769_IPV4
    at = raw.index(b"\x00\x08\x00\x14")
    head = bytearray(raw[:at])
    struct.pack_into("!H", head, 2, at + 24 - stun.HEADER_SIZE)
    mac = hmac.new(RFC5769_PASSWORD, head, hashlib.sha1).digest()
    assert mac == raw[at + 4 : at + 24]


def test_a_corrupted_fingerprint_is_refused() -> None:
    broken = bytearray(RFC5769_IPV4)
    broken[-1] ^= 1
    with pytest.raises(stun.StunError):
        stun.decode(bytes(broken))


def test_binding_request_layout() -> None:
    txid = bytes(range(12))
    raw = stun.encode(stun.binding_request(txid), fingerprint=False)
    assert raw == b"\x00\x01\x00\x00\x21\x12\xa4\x42" + txid
    assert stun.is_stun(raw)


@given(txids, hosts, ports)
def test_success_round_trip(txid: bytes, host: str, port: int) -> None:
    raw = stun.encode(stun.binding_success(txid, host, port))
    decoded = stun.decode(raw)
    assert decoded.message.transaction_id == txid
    assert decoded.message.cls is stun.StunClass.SUCCESS
    assert stun.mapped_address(decoded.message) == (host, port)


@given(st.integers(0, 2**32 - 1), ports, txids)
def test_ipv4_mapped_addresses_are_reported_as_ipv4(n: int, port: int, txid: bytes) -> None:
    v4 = ipaddress.IPv4Address(n)
    raw = stun.encode(stun.binding_success(txid, f"::ffff:{v4}", port))
    assert stun.mapped_address(stun.decode(raw).message) == (str(v4), port)


@given(txids, st.binary(min_size=1, max_size=64), st.binary(min_size=16, max_size=32))
def test_integrity_round_trip(txid: bytes, username: bytes, key: bytes) -> None:
    raw = stun.encode(stun.binding_request(txid, username), integrity_key=key)
    decoded = stun.decode(raw)
    assert decoded.message.get(stun.ATTR_USERNAME) == username
    assert stun.check_integrity(decoded, key)
    assert not stun.check_integrity(decoded, key + b"x")


@given(txids, st.binary(min_size=16, max_size=16), st.integers(0, 200))
def test_any_flipped_bit_breaks_integrity_or_parsing(txid: bytes, key: bytes, bit: int) -> None:
    raw = bytearray(stun.encode(stun.binding_request(txid, b"session"), integrity_key=key))
    index = bit % (len(raw) * 8)
    raw[index // 8] ^= 1 << (index % 8)
    try:
        decoded = stun.decode(bytes(raw))
    except stun.StunError:
        return
    assert not stun.check_integrity(decoded, key)


def test_attributes_after_integrity_are_ignored() -> None:
    txid = bytes(12)
    signed = stun.encode(
        stun.binding_request(txid, b"user"), integrity_key=b"k" * 16, fingerprint=False
    )
    # Append an unsigned USERNAME after the integrity attribute (fixing the length field).
    extra = struct.pack("!HH", stun.ATTR_USERNAME, 4) + b"evil"
    raw = bytearray(signed + extra)
    struct.pack_into("!H", raw, 2, len(raw) - stun.HEADER_SIZE)
    decoded = stun.decode(bytes(raw))
    assert [v for t, v in decoded.message.attributes if t == stun.ATTR_USERNAME] == [b"user"]
    assert stun.check_integrity(decoded, b"k" * 16)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_stun_error(data: bytes) -> None:
    try:
        decoded = stun.decode(data)
    except stun.StunError:
        return
    stun.mapped_address(decoded.message)
    stun.error_code(decoded.message)


@given(txids, st.lists(st.tuples(st.integers(0, 0x7FFF), st.binary(max_size=40)), max_size=6))
def test_arbitrary_attributes_round_trip(txid: bytes, attributes: list[tuple[int, bytes]]) -> None:
    attributes = [(t, v) for t, v in attributes if t not in (stun.ATTR_FINGERPRINT,)]
    attributes = [(t, v) for t, v in attributes if t != stun.ATTR_MESSAGE_INTEGRITY_SHA256]
    message = stun.StunMessage(stun.BINDING, stun.StunClass.INDICATION, txid, tuple(attributes))
    assert stun.decode(stun.encode(message)).message == message


@given(st.integers(0, 0xFFF), st.sampled_from(list(stun.StunClass)), txids)
def test_message_type_bits_round_trip(method: int, cls: stun.StunClass, txid: bytes) -> None:
    decoded = stun.decode(stun.encode(stun.StunMessage(method, cls, txid))).message
    assert (decoded.method, decoded.cls) == (method, cls)


def test_error_code() -> None:
    value = struct.pack("!HBB", 0, 4, 20) + b"Unknown Attribute"
    message = stun.StunMessage(
        stun.BINDING, stun.StunClass.ERROR, bytes(12), ((stun.ATTR_ERROR_CODE, value),)
    )
    assert stun.error_code(stun.decode(stun.encode(message)).message) == 420


@given(st.binary(min_size=1, max_size=60))
def test_quic_packets_are_never_taken_for_stun(rest: bytes) -> None:
    for first in (0x40, 0x5F, 0xC0, 0xFF):  # short header, long header: the fixed bit is set
        assert not stun.is_stun(bytes((first,)) + rest)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01\x00\x04\x21\x12\xa4\x42" + bytes(12),  # length past the end
        b"\x00\x01\x00\x04\x21\x12\xa4\x42" + bytes(12) + b"\x00\x06\x00\x09",  # value past end
        b"\x00\x01\x00\x00\x21\x12\xa4\x43" + bytes(12),  # wrong cookie
        b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(11),  # short transaction ID
    ],
)
def test_malformed_messages(raw: bytes) -> None:
    with pytest.raises(stun.StunError):
        stun.decode(raw)


def test_bad_addresses_are_not_reported() -> None:
    for value in (b"\x00\x03\x00\x01" + bytes(4), b"\x00\x01\x00\x01" + bytes(3), b"\x00"):
        message = stun.StunMessage(
            stun.BINDING, stun.StunClass.SUCCESS, bytes(12), ((stun.ATTR_MAPPED_ADDRESS, value),)
        )
        assert stun.mapped_address(message) is None
