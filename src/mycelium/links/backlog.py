"""What a link holds back while its transport is congested, within fixed bounds.

A transport's own send buffer grows without limit. Once it is above its high-water mark the link
stops writing to it and keeps frames here instead, so a peer that reads slowly (or never) costs
at most the transport's high-water mark plus these bounds:

- control frames are coalesced: a newer Update for a prefix replaces the queued one (the peer
  only needs the latest), a newer Hello or IHU replaces the queued one, an identical request is
  kept once; past ``CONTROL_BYTES`` the newest are dropped;
- data frames are kept up to ``DATA_BYTES`` and dropped past it, as a router's queue would.

When the transport drains, control frames go out first: data never starves them. Every drop and
every replacement is counted (docs/wire.md §6.3.5).
"""

from __future__ import annotations

from collections import deque

from ..wire.tlv import HELLO, IHU, UPDATE

#: Control bytes held per link (after coalescing, the Updates of a 50,000-route table fit).
CONTROL_BYTES = 4 * 1024 * 1024
#: Data bytes held per link.
DATA_BYTES = 1024 * 1024
#: Bytes written to the transport per step of a drain (it stops once the transport fills up).
DRAIN_CHUNK = 64 * 1024

# A control frame is outer header (4), babel header (4), TLV type (1), length (1), value.
_TLV_TYPE = 8
_UPDATE_PLEN = 12  # AE (10), flags (11), prefix length (12), omitted (13), 6 bytes, prefix (20)
_UPDATE_PREFIX = 20
_ROUTER_ID = 40
_LATEST_ONLY = {HELLO: b"hello", IHU: b"ihu"}


def control_key(frame: bytes) -> bytes:
    """Frames with equal keys supersede each other: the later one is all the peer needs."""
    kind = frame[_TLV_TYPE] if len(frame) > _TLV_TYPE else -1
    if kind == UPDATE and len(frame) >= _UPDATE_PREFIX + _ROUTER_ID:
        return (
            frame[_TLV_TYPE : _TLV_TYPE + 1]
            + frame[_UPDATE_PLEN : _UPDATE_PLEN + 1]
            + (frame[_UPDATE_PREFIX:-_ROUTER_ID])
        )
    return _LATEST_ONLY.get(kind, frame)


class Backlog:
    """Held control frames (coalesced, in first-queued order) and data frames (FIFO)."""

    __slots__ = (
        "_control",
        "_data",
        "coalesced",
        "control_bytes",
        "control_limit",
        "data_bytes",
        "data_limit",
        "dropped_control",
        "dropped_data",
    )

    def __init__(self, control_limit: int = CONTROL_BYTES, data_limit: int = DATA_BYTES) -> None:
        self.control_limit = control_limit
        self.data_limit = data_limit
        self._control: dict[bytes, bytes] = {}
        self._data: deque[bytes] = deque()
        self.control_bytes = 0
        self.data_bytes = 0
        #: Control frames replaced by a newer one for the same thing.
        self.coalesced = 0
        self.dropped_control = 0
        self.dropped_data = 0

    def __bool__(self) -> bool:
        return bool(self._control) or bool(self._data)

    def __len__(self) -> int:
        return len(self._control) + len(self._data)

    def add_control(self, frame: bytes) -> None:
        key = control_key(frame)
        old = self._control.get(key)
        size = self.control_bytes + len(frame) - (len(old) if old is not None else 0)
        if size > self.control_limit:
            self.dropped_control += 1
            return
        if old is not None:
            self.coalesced += 1
        self._control[key] = frame
        self.control_bytes = size

    def add_data(self, frames: list[bytes]) -> None:
        room = self.data_limit - self.data_bytes
        for i, frame in enumerate(frames):
            if len(frame) > room:
                self.dropped_data += len(frames) - i
                break
            self._data.append(frame)
            room -= len(frame)
        self.data_bytes = self.data_limit - room

    def take(self, limit: int = DRAIN_CHUNK) -> tuple[list[bytes], list[bytes]]:
        """Up to ``limit`` bytes (at least one frame): (control frames, data frames)."""
        control: list[bytes] = []
        data: list[bytes] = []
        taken = 0
        held = self._control
        keys: list[bytes] = []
        for key, frame in held.items():  # one pass: popping the first key over and over is O(n²)
            if taken >= limit:
                break
            keys.append(key)
            control.append(frame)
            taken += len(frame)
        for key in keys:
            del held[key]
        self.control_bytes -= taken
        queue = self._data
        start = taken
        while queue and taken < limit:
            frame = queue.popleft()
            data.append(frame)
            taken += len(frame)
        self.data_bytes -= taken - start
        return control, data


class BacklogCounts:
    """Totals of what backlogs coalesced and dropped, kept past the links they belonged to."""

    __slots__ = ("coalesced", "dropped_control", "dropped_data")

    def __init__(self) -> None:
        self.coalesced = 0
        self.dropped_control = 0
        self.dropped_data = 0

    def add(self, backlog: Backlog | BacklogCounts) -> None:
        self.coalesced += backlog.coalesced
        self.dropped_control += backlog.dropped_control
        self.dropped_data += backlog.dropped_data
