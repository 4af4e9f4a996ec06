"""Outer packet header, data packets and control-packet envelopes (docs/wire.md §4)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from .tlv import Tlv, encode_tlv

PROTOCOL_VERSION: Final = 1
TYPE_DATA: Final = 0
TYPE_CONTROL: Final = 1
BABEL_MAGIC: Final = 42
BABEL_VERSION: Final = 3

OUTER_HEADER_SIZE: Final = 4
#: Size of the data packet header that follows the outer header.
DATA_HEADER_SIZE: Final = 36
BABEL_HEADER_SIZE: Final = 4
MAX_DATA_BODY: Final = 0xFFFF
#: The nonce that ends an encrypted body (docs/wire.md §5).
NONCE_TAIL: Final = 12

DATA_OUTER: Final = bytes((PROTOCOL_VERSION, TYPE_DATA, 0, 0))
CONTROL_HEADER: Final = bytes((PROTOCOL_VERSION, TYPE_CONTROL, 0, 0))
_LENGTH_HOP: Final = struct.Struct("!I")
_BABEL: Final = struct.Struct("!BBH")


@dataclass(slots=True, init=False)
class DataPacket:
    """An encrypted data packet; intermediate nodes only ever read this header.

    The body is held in two parts, as the destination uses it: ``sealed``, all but its last
    ``NONCE_TAIL`` bytes (the ciphertext and tag), and ``nonce``, those last bytes (all of a
    shorter body). The stream decoder slices both straight from what it read, so opening a
    packet copies nothing more and a relay writes both parts back as they came.

    Its ``__init__`` is written out: mypyc compiles that one, while the one ``dataclass``
    generates stays interpreted (one made per data packet received, 4x the cost)."""

    src: bytes
    dst: bytes
    hop_limit: int
    sealed: bytes
    nonce: bytes

    def __init__(self, src: bytes, dst: bytes, hop_limit: int, body: bytes) -> None:
        self.src = src
        self.dst = dst
        self.hop_limit = hop_limit
        self.sealed = body[:-NONCE_TAIL]
        self.nonce = body[-NONCE_TAIL:]

    @property
    def body(self) -> bytes:
        """The body as on the wire (a copy)."""
        return self.sealed + self.nonce

    @property
    def size(self) -> int:
        """Length of the body."""
        return len(self.sealed) + len(self.nonce)

    def encode(self) -> bytes:
        return encode_data(self.src, self.dst, self.hop_limit, self.body)


def nonce_cut(start: int, stop: int) -> int:
    """Where a body from ``start`` to ``stop`` splits into ``sealed`` and ``nonce``, as
    ``DataPacket`` splits one (all nonce when shorter than ``NONCE_TAIL``)."""
    return stop - NONCE_TAIL if stop - start > NONCE_TAIL else start


def data_packet(src: bytes, dst: bytes, hop_limit: int, sealed: bytes, nonce: bytes) -> DataPacket:
    """A data packet from its body's two parts, split as ``DataPacket`` splits a body."""
    packet = DataPacket(src, dst, hop_limit, b"")  # slicing b"" makes nothing new
    packet.sealed = sealed
    packet.nonce = nonce
    return packet


def encode_data(src: bytes, dst: bytes, hop_limit: int, body: bytes) -> bytes:
    """A complete data frame: outer header, 36-byte data header, body (≤ 65535 bytes)."""
    if len(body) > MAX_DATA_BODY:
        raise ValueError(f"data body of {len(body)} bytes exceeds {MAX_DATA_BODY}")
    return DATA_OUTER + _LENGTH_HOP.pack((len(body) << 8) | (hop_limit & 0xFF)) + src + dst + body


def encode_control(tlv: Tlv) -> bytes:
    """A complete control frame carrying exactly one TLV, no padding (what Rust can parse)."""
    encoded = encode_tlv(tlv)
    return CONTROL_HEADER + _BABEL.pack(BABEL_MAGIC, BABEL_VERSION, len(encoded)) + encoded
