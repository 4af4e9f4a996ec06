"""STUN messages (RFC 8489), sans-I/O: the few parts NAT traversal needs (docs/nat.md).

A STUN message is a 20-byte header (type, body length, the magic cookie 0x2112A442, a 12-byte
transaction ID) followed by attributes, each a 16-bit type and length and a value padded to four
bytes. We build Binding requests and responses; we read XOR-MAPPED-ADDRESS (or the older
MAPPED-ADDRESS), USERNAME, ERROR-CODE, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT.

STUN shares the node's QUIC socket: its first two bits are 00, while every QUIC packet has the
fixed bit (0x40) set, so ``is_stun`` tells them apart from the first byte and the cookie.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

MAGIC_COOKIE = 0x2112A442
HEADER_SIZE = 20
TRANSACTION_ID_SIZE = 12
#: Nothing we send or expect comes near this; a larger datagram is not ours to parse.
MAX_MESSAGE_SIZE = 1280

BINDING = 0x001

ATTR_MAPPED_ADDRESS = 0x0001
ATTR_USERNAME = 0x0006
ATTR_MESSAGE_INTEGRITY = 0x0008
ATTR_ERROR_CODE = 0x0009
ATTR_XOR_MAPPED_ADDRESS = 0x0020
ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C
ATTR_SOFTWARE = 0x8022
ATTR_FINGERPRINT = 0x8028

FINGERPRINT_XOR = 0x5354554E
INTEGRITY_SIZE = 32

_HEADER = struct.Struct("!HHI12s")
_ATTR = struct.Struct("!HH")
_COOKIE = struct.pack("!I", MAGIC_COOKIE)


class StunError(ValueError):
    """Bytes that are not a well-formed STUN message."""


class StunClass(IntEnum):
    REQUEST = 0b00
    INDICATION = 0b01
    SUCCESS = 0b10
    ERROR = 0b11


@dataclass(frozen=True, slots=True)
class StunMessage:
    method: int
    cls: StunClass
    transaction_id: bytes
    #: (type, value) in order, values without padding.
    attributes: tuple[tuple[int, bytes], ...] = ()

    def get(self, attr_type: int) -> bytes | None:
        """The first attribute of that type (later duplicates are ignored, RFC 8489 §14)."""
        for kind, value in self.attributes:
            if kind == attr_type:
                return value
        return None


def is_stun(data: bytes) -> bool:
    """Whether a datagram on the shared socket is STUN rather than QUIC."""
    return (
        len(data) >= HEADER_SIZE and data[0] < 0x40 and data[4:8] == _COOKIE and len(data) & 3 == 0
    )


def _message_type(method: int, cls: StunClass) -> int:
    # The class bits sit at positions 4 and 8, between the method bits (RFC 8489 §5).
    return (
        (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((cls & 1) << 4)
        | ((cls & 2) << 7)
    )


def _split_type(value: int) -> tuple[int, StunClass]:
    method = (value & 0x000F) | ((value >> 1) & 0x0070) | ((value >> 2) & 0x0F80)
    cls = StunClass(((value >> 4) & 1) | ((value >> 7) & 2))
    return method, cls


def _pad(value: bytes) -> bytes:
    return value + bytes(-len(value) & 3)


def encode(
    message: StunMessage, *, integrity_key: bytes | None = None, fingerprint: bool = True
) -> bytes:
    """The message's bytes; with ``integrity_key`` a MESSAGE-INTEGRITY-SHA256 follows the
    attributes, then (unless told not to) a FINGERPRINT."""
    if len(message.transaction_id) != TRANSACTION_ID_SIZE:
        raise ValueError("a transaction ID is 12 bytes")
    body = b"".join(
        _ATTR.pack(kind, len(value)) + _pad(value) for kind, value in message.attributes
    )
    kind = _message_type(message.method, message.cls)
    if integrity_key is not None:
        length = len(body) + 4 + INTEGRITY_SIZE
        signed = _HEADER.pack(kind, length, MAGIC_COOKIE, message.transaction_id) + body
        mac = _sha256_mac(integrity_key, signed)
        body += _ATTR.pack(ATTR_MESSAGE_INTEGRITY_SHA256, INTEGRITY_SIZE) + mac
    if fingerprint:
        length = len(body) + 8
        head = _HEADER.pack(kind, length, MAGIC_COOKIE, message.transaction_id) + body
        crc = (zlib.crc32(head) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
        return head + _ATTR.pack(ATTR_FINGERPRINT, 4) + struct.pack("!I", crc)
    return _HEADER.pack(kind, len(body), MAGIC_COOKIE, message.transaction_id) + body


@dataclass(frozen=True, slots=True)
class Decoded:
    """A parsed message and where its integrity attribute starts (to check it later)."""

    message: StunMessage
    raw: bytes
    integrity_at: int | None


def decode(data: bytes) -> Decoded:
    """Parse a STUN message; a FINGERPRINT, if present, must be right and come last."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise StunError("message too large")
    if not is_stun(data):
        raise StunError("not a STUN message")
    kind, length, _cookie, transaction_id = _HEADER.unpack_from(data)
    if kind & 0xC000:
        raise StunError("message type has its top bits set")
    if length != len(data) - HEADER_SIZE:
        raise StunError("length field disagrees with the datagram")
    method, cls = _split_type(kind)
    attributes: list[tuple[int, bytes]] = []
    integrity_at: int | None = None
    offset = HEADER_SIZE
    while offset < len(data):
        if offset + 4 > len(data):
            raise StunError("truncated attribute header")
        attr_type, attr_len = _ATTR.unpack_from(data, offset)
        end = offset + 4 + attr_len
        if end > len(data):
            raise StunError("attribute runs past the end")
        value = bytes(data[offset + 4 : end])
        if attr_type == ATTR_FINGERPRINT:
            if attr_len != 4 or end + (-attr_len & 3) != len(data):
                raise StunError("FINGERPRINT must be the last attribute")
            head = bytearray(data[:offset])
            struct.pack_into("!H", head, 2, offset + 8 - HEADER_SIZE)
            expected = (zlib.crc32(head) ^ FINGERPRINT_XOR) & 0xFFFFFFFF
            if struct.unpack("!I", value)[0] != expected:
                raise StunError("FINGERPRINT mismatch")
        elif integrity_at is None:
            # Attributes after an integrity check (but FINGERPRINT) are not covered by it and
            # are ignored (RFC 8489 §14.6).
            if attr_type == ATTR_MESSAGE_INTEGRITY_SHA256:
                integrity_at = offset
            attributes.append((attr_type, value))
        offset = end + (-attr_len & 3)
    return Decoded(StunMessage(method, cls, transaction_id, tuple(attributes)), data, integrity_at)


def check_integrity(decoded: Decoded, key: bytes) -> bool:
    """Whether the message carries a MESSAGE-INTEGRITY-SHA256 made with ``key``."""
    at = decoded.integrity_at
    if at is None:
        return False
    mac = decoded.message.get(ATTR_MESSAGE_INTEGRITY_SHA256)
    if mac is None or len(mac) != INTEGRITY_SIZE:
        return False
    head = bytearray(decoded.raw[:at])
    struct.pack_into("!H", head, 2, at + 4 + INTEGRITY_SIZE - HEADER_SIZE)
    import hmac  # see _sha256_mac

    return hmac.compare_digest(_sha256_mac(key, head), mac)


def _sha256_mac(key: bytes, data: bytes | bytearray) -> bytes:
    """HMAC-SHA256. hmac and hashlib (0.7 MB with OpenSSL's hash bindings) load with the first
    message that carries an integrity attribute, not with NAT traversal at rest."""
    import hashlib
    import hmac

    return hmac.new(key, data, hashlib.sha256).digest()


# --- addresses ----------------------------------------------------------------------------------
def _family_and_packed(host: str) -> tuple[int, bytes]:
    address = ipaddress.ip_address(host)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (1, address.packed) if address.version == 4 else (2, address.packed)


def _xor_mask(transaction_id: bytes, size: int) -> bytes:
    return (_COOKIE + transaction_id)[:size]


def xor_mapped_address(host: str, port: int, transaction_id: bytes) -> tuple[int, bytes]:
    """An XOR-MAPPED-ADDRESS attribute for ``host:port`` (an IPv4-mapped address as IPv4)."""
    family, packed = _family_and_packed(host)
    mask = _xor_mask(transaction_id, len(packed))
    x_addr = bytes(a ^ b for a, b in zip(packed, mask, strict=True))
    header = struct.pack("!BBH", 0, family, port ^ (MAGIC_COOKIE >> 16))
    return ATTR_XOR_MAPPED_ADDRESS, header + x_addr


def _read_address(value: bytes, mask: bytes | None, xor_port: int) -> tuple[str, int] | None:
    if len(value) < 4:
        return None
    _reserved, family, port = struct.unpack_from("!BBH", value)
    size = {1: 4, 2: 16}.get(family)
    if size is None or len(value) != 4 + size:
        return None
    packed = value[4:]
    if mask is not None:
        packed = bytes(a ^ b for a, b in zip(packed, mask[:size], strict=True))
    port ^= xor_port
    if port == 0:
        return None
    return str(ipaddress.ip_address(packed)), port


def mapped_address(message: StunMessage) -> tuple[str, int] | None:
    """The reflexive transport address a response reports: XOR-MAPPED-ADDRESS, or
    MAPPED-ADDRESS from servers that predate it; None when neither is usable."""
    value = message.get(ATTR_XOR_MAPPED_ADDRESS)
    if value is not None:
        mask = _xor_mask(message.transaction_id, 16)
        return _read_address(value, mask, MAGIC_COOKIE >> 16)
    value = message.get(ATTR_MAPPED_ADDRESS)
    if value is not None:
        return _read_address(value, None, 0)
    return None


def error_code(message: StunMessage) -> int | None:
    """The ERROR-CODE of an error response (class * 100 + number), or None."""
    value = message.get(ATTR_ERROR_CODE)
    if value is None or len(value) < 4:
        return None
    return (value[2] & 0x07) * 100 + value[3]


# --- the messages we build ----------------------------------------------------------------------
def binding_request(transaction_id: bytes, username: bytes | None = None) -> StunMessage:
    attributes = () if username is None else ((ATTR_USERNAME, username),)
    return StunMessage(BINDING, StunClass.REQUEST, transaction_id, attributes)


def binding_success(transaction_id: bytes, host: str, port: int) -> StunMessage:
    return StunMessage(
        BINDING,
        StunClass.SUCCESS,
        transaction_id,
        (xor_mapped_address(host, port, transaction_id),),
    )
