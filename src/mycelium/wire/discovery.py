"""Link-local discovery beacons (docs/wire.md §7): ``mycelium`` ‖ TCP port ‖ router ID, 50 bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..identity import ROUTER_ID_SIZE, RouterId
from .errors import MalformedPacket

MAGIC = b"mycelium"
BEACON_SIZE = len(MAGIC) + 2 + ROUTER_ID_SIZE
MULTICAST_GROUP = "ff02::cafe"
DEFAULT_PORT = 9650
_PORT = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class Beacon:
    tcp_port: int
    router_id: RouterId

    def encode(self) -> bytes:
        return MAGIC + _PORT.pack(self.tcp_port) + self.router_id

    @classmethod
    def decode(cls, data: bytes) -> Beacon:
        if len(data) != BEACON_SIZE:
            raise MalformedPacket(f"beacon of {len(data)} bytes, expected {BEACON_SIZE}")
        if data[: len(MAGIC)] != MAGIC:
            raise MalformedPacket("beacon without the mycelium magic")
        (port,) = _PORT.unpack_from(data, len(MAGIC))
        return cls(port, RouterId(bytes(data[len(MAGIC) + 2 :])))


def is_link_local_source(address: bytes) -> bool:
    """Beacons are only accepted from fe80::/64."""
    return len(address) == 16 and address[:8] == b"\xfe\x80" + bytes(6)
