"""The data plane: TUN packets <-> encrypted data frames, forwarding and local delivery."""

from ..routing.decisions import RouteLookup
from .counters import Counters
from .plane import MAX_INNER_PACKET, DataPlane
from .queue import QUERY_TIMEOUT, PacketQueue

__all__ = [
    "MAX_INNER_PACKET",
    "QUERY_TIMEOUT",
    "Counters",
    "DataPlane",
    "PacketQueue",
    "RouteLookup",
]
