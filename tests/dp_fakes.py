"""A tiny stand-in for the Router contract (routing/router.py) and packet helpers for tests."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Hashable

from mycelium.crypto import KeyCache
from mycelium.dataplane import DataPlane
from mycelium.identity import Identity
from mycelium.routing import Decision, Forward, Local, NoRoute, Queue
from mycelium.subnet import Subnet
from mycelium.wire.packet import DataPacket


def identity(label: str) -> Identity:
    return Identity.from_secret(hashlib.sha256(label.encode()).digest())


class FakeRouter:
    """Routes per /64: (neighbour, public key, selected). Unknown /64s are 'queried'."""

    def __init__(self, own: Identity) -> None:
        self.own = own.subnet
        self.table: dict[Subnet, tuple[Hashable, bytes, bool]] = {}
        self.requests: list[Subnet] = []
        self.route_calls = 0
        self.key_calls = 0
        #: Bumped by every change to ``table`` (the data plane keeps answers while it holds).
        self.version = 0
        self.versioned = self

    def add(self, who: Identity, neighbour: Hashable, selected: bool = True) -> None:
        self.table[who.subnet] = (neighbour, who.public_key, selected)
        self.version += 1

    def remove(self, who: Identity) -> None:
        del self.table[who.subnet]
        self.version += 1

    def route(self, dst: bytes, now: float, origin: bool = False) -> Decision:
        self.route_calls += 1
        subnet = Subnet.of(dst, 64)
        if subnet == self.own:
            return Local()
        entry = self.table.get(subnet)
        if entry is None:
            self.requests.append(subnet)
            return Queue(subnet)
        neighbour, key, selected = entry
        if selected:
            return Forward(neighbour, key)
        return Queue(subnet) if origin else NoRoute()

    def public_key_for(self, address: bytes) -> bytes | None:
        self.key_calls += 1
        entry = self.table.get(Subnet.of(address, 64))
        return None if entry is None else entry[1]

    def request_route(self, address: bytes, now: float) -> None:
        self.requests.append(Subnet.of(address, 64))


def make_plane(who: Identity, **kwargs: object) -> tuple[DataPlane, FakeRouter]:
    router = FakeRouter(who)
    return DataPlane(who, router, KeyCache(who.secret), **kwargs), router  # type: ignore[arg-type]


def take_frames(plane: DataPlane) -> list[tuple[Hashable, bytes]]:
    """Every frame the plane queued for its links, one (neighbour, frame) pair each."""
    return [(n, frame) for n, frames in plane.take_link_batches() for frame in frames]


def ipv6_packet(
    src: bytes, dst: bytes, hop: int = 64, payload: bytes = b"x" * 20, next_header: int = 17
) -> bytes:
    return struct.pack("!IHBB", 0x60000000, len(payload), next_header, hop) + src + dst + payload


def parse_frame(frame: bytes) -> DataPacket:
    assert frame[:4] == b"\x01\x00\x00\x00"
    (word,) = struct.unpack("!I", frame[4:8])
    length, hop = (word >> 8) & 0xFFFF, word & 0xFF
    body = frame[40:]
    assert len(body) == length
    return DataPacket(frame[8:24], frame[24:40], hop, body)


def reference_checksum(data: bytes) -> int:
    """RFC 1071 the slow, obvious way (independent of the implementation under test)."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmpv6_checksum_ok(packet: bytes) -> bool:
    """Verify an IPv6+ICMPv6 packet's checksum with the pseudo-header (no extension headers)."""
    assert packet[6] == 58
    length = struct.unpack("!H", packet[4:6])[0]
    assert len(packet) == 40 + length
    pseudo = packet[8:40] + struct.pack("!I", length) + b"\x00\x00\x00\x3a"
    return reference_checksum(pseudo + packet[40:]) == 0
