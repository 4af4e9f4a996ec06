"""Message-subsystem packets (docs/messages.md §2), carried as user-data type 0x01 in data packets.

Every packet is a 12-byte header (8-byte message id, big-endian u16 flags, 2 reserved bytes)
followed by a body whose layout depends on the flags: INIT (u64 length, u8 topic length, topic),
CHUNK (u64 index, u64 offset, u64 size, data), DONE (u64 chunk count, 32-byte BLAKE3 checksum).
An ACK carries the body it acknowledges (a CHUNK ack without the data); READ and ABORTED are a
bare header.

TOPIC_QUERY is ours (docs/nat.md): its body is a topic, and a node that handles that topic
internally answers with TOPIC_QUERY | ACK and the same id and body. The reference ignores
packets with flags it does not know, so the question costs a reference node nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import MalformedPacket

FLAG_INIT = 0x8000
FLAG_DONE = 0x4000
FLAG_ABORTED = 0x2000
FLAG_CHUNK = 0x1000
FLAG_READ = 0x0800
FLAG_REPLY = 0x0400
FLAG_ACK = 0x0100
FLAG_TOPIC_QUERY = 0x0001

HEADER_SIZE = 12
ID_SIZE = 8
CHECKSUM_SIZE = 32
CHUNK_HEADER_SIZE = 24
MAX_TOPIC = 255

_HEADER = struct.Struct("!8sHH")
_U64 = struct.Struct("!Q")
_CHUNK = struct.Struct("!QQQ")


@dataclass(frozen=True, slots=True)
class Init:
    length: int
    topic: bytes


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    offset: int
    size: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Done:
    chunk_count: int
    checksum: bytes


@dataclass(frozen=True, slots=True)
class MessagePacket:
    id: bytes
    flags: int
    body: bytes = b""

    def has(self, flag: int) -> bool:
        return bool(self.flags & flag)

    def init(self) -> Init:
        body = self.body
        if len(body) < 9 or len(body) < 9 + body[8]:
            raise MalformedPacket("INIT body too short")
        return Init(_U64.unpack_from(body)[0], bytes(body[9 : 9 + body[8]]))

    def chunk(self) -> Chunk:
        body = self.body
        if len(body) < CHUNK_HEADER_SIZE:
            raise MalformedPacket("CHUNK body too short")
        index, offset, size = _CHUNK.unpack_from(body)
        # The data is what follows, however large the size field claims to be (as the reference).
        size = min(size, len(body) - CHUNK_HEADER_SIZE)
        return Chunk(index, offset, size, bytes(body[CHUNK_HEADER_SIZE : CHUNK_HEADER_SIZE + size]))

    def done(self) -> Done:
        body = self.body
        if len(body) < 8 + CHECKSUM_SIZE:
            raise MalformedPacket("DONE body too short")
        return Done(_U64.unpack_from(body)[0], bytes(body[8 : 8 + CHECKSUM_SIZE]))

    def encode(self) -> bytes:
        return _HEADER.pack(self.id, self.flags, 0) + self.body


def decode(payload: bytes) -> MessagePacket:
    if len(payload) < HEADER_SIZE:
        raise MalformedPacket(f"message packet of {len(payload)} bytes, header needs 12")
    message_id, flags, _reserved = _HEADER.unpack_from(payload)
    return MessagePacket(message_id, flags, bytes(payload[HEADER_SIZE:]))


def init_body(length: int, topic: bytes) -> bytes:
    if len(topic) > MAX_TOPIC:
        raise ValueError("a topic is at most 255 bytes")
    return _U64.pack(length) + bytes((len(topic),)) + topic


def chunk_body(index: int, offset: int, data: bytes) -> bytes:
    return _CHUNK.pack(index, offset, len(data)) + data


def chunk_ack_body(chunk: Chunk) -> bytes:
    """A chunk's acknowledgement keeps the index, offset and size fields, not the data."""
    return _CHUNK.pack(chunk.index, chunk.offset, chunk.size)


def done_body(chunk_count: int, checksum: bytes) -> bytes:
    return _U64.pack(chunk_count) + checksum
