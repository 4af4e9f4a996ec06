"""CDN metadata blobs: ``MCDN``, version 1, then bincode 2 (big-endian, fixed-width integers).

Layouts follow the reference's ``cdn-meta`` crate (docs/extras.md §3.4): lengths are u64, enum tags
u32, ``Option`` a 0/1 byte, byte arrays raw, socket addresses a u32 family tag (0 = IPv4, 1 =
IPv6), the address bytes and a u16 port. Decoding is strict and bounded by the input: a length
can never make us allocate more than the bytes that are there.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

MAGIC = b"MCDN"
VERSION = 1


class MetadataError(ValueError):
    """The blob is not metadata this gateway understands."""


@dataclass(frozen=True, slots=True)
class ShardLocation:
    host: str
    port: int
    db: int
    #: The Hero Redis token, if any (the reference never sends it; neither do we).
    token: str | None


@dataclass(frozen=True, slots=True)
class Block:
    shards: tuple[ShardLocation, ...]
    required_shards: int
    start_offset: int
    end_offset: int
    content_hash: bytes
    encrypted_hash: bytes
    nonce: bytes


@dataclass(frozen=True, slots=True)
class File:
    content_hash: bytes
    name: str
    mime: str | None
    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class Directory:
    #: (metadata hash, decryption key of that metadata or None)
    files: tuple[tuple[bytes, bytes | None], ...]
    name: str


Metadata = File | Directory


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise MetadataError(f"truncated at byte {self.pos} (wanted {n} more)")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def length(self, item_size: int) -> int:
        """A u64 count of items of at least ``item_size`` bytes, checked against what is left."""
        n = self.uint(8)
        if n * item_size > len(self.data) - self.pos:
            raise MetadataError(f"length {n} at byte {self.pos - 8} exceeds the blob")
        return n

    def option(self) -> bool:
        flag = self.uint(1)
        if flag > 1:
            raise MetadataError(f"bad option tag {flag} at byte {self.pos - 1}")
        return flag == 1

    def string(self) -> str:
        raw = self.take(self.length(1))
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise MetadataError("a string is not UTF-8") from None

    def shard(self) -> ShardLocation:
        family = self.uint(4)
        if family == 0:
            host = str(ipaddress.IPv4Address(self.take(4)))
        elif family == 1:
            host = str(ipaddress.IPv6Address(self.take(16)))
        else:
            raise MetadataError(f"bad socket address tag {family}")
        port, db = struct.unpack("!HH", self.take(4))
        token = None
        if self.option():
            tag = self.uint(4)
            if tag != 0:
                raise MetadataError(f"bad auth tag {tag}")
            token = self.string()
        return ShardLocation(host, port, db, token)

    def block(self) -> Block:
        shards = tuple(self.shard() for _ in range(self.length(11)))
        required, start, end = struct.unpack("!HQQ", self.take(18))
        return Block(shards, required, start, end, self.take(16), self.take(16), self.take(12))


def decode(blob: bytes) -> tuple[Metadata, int]:
    """(metadata, bytes used); trailing bytes are the caller's to judge (the reference logs)."""
    if len(blob) < 5:
        raise MetadataError("too short to be metadata")
    if blob[:4] != MAGIC:
        raise MetadataError("bad magic")
    if blob[4] != VERSION:
        raise MetadataError(f"unsupported metadata version {blob[4]}")
    r = _Reader(blob)
    r.pos = 5
    tag = r.uint(4)
    meta: Metadata
    if tag == 0:
        content_hash = r.take(16)
        name = r.string()
        mime = r.string() if r.option() else None
        blocks = tuple(r.block() for _ in range(r.length(70)))
        meta = File(content_hash, name, mime, blocks)
    elif tag == 1:
        files = []
        for _ in range(r.length(17)):
            file_hash = r.take(16)
            files.append((file_hash, r.take(16) if r.option() else None))
        meta = Directory(tuple(files), r.string())
    else:
        raise MetadataError(f"bad metadata tag {tag}")
    return meta, r.pos
