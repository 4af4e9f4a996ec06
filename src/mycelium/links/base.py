"""What every transport provides to the node, and what the node provides to every transport.

A link is one live connection to a neighbour. It delivers decoded packets up in batches and
accepts encoded frames down; nothing above it knows which transport carries them.

While a transport is congested (its buffer above the high-water mark) the link holds frames in a
bounded ``Backlog`` instead of growing the transport's buffer, drains it control-first when the
transport catches up, and closes a link whose transport makes no progress for ``STUCK_TIMEOUT``.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Protocol

from ..wire.stream import Packet
from .backlog import Backlog

log = logging.getLogger(__name__)

#: A congested link whose transport sends less than ``STUCK_PROGRESS`` bytes in this many
#: seconds is closed: its peer stopped reading.
STUCK_TIMEOUT = 30.0
STUCK_PROGRESS = 64 * 1024


class LinkHandler(Protocol):
    """Implemented by the node runtime."""

    def link_packets(self, link: Link, packets: list[Packet]) -> None:
        """Packets decoded from one read, in arrival order."""

    def link_closed(self, link: Link, reason: str) -> None:
        """The link is gone (EOF, error, framing violation, or ``close()``). Called once."""

    def link_pause_writing(self, link: Link) -> None:
        """The link is congested: what is sent to it now is held (bounded) or dropped."""

    def link_resume_writing(self, link: Link) -> None:
        """The link's congestion is over (or the link is closing): called once per pause."""


class Link(abc.ABC):
    """One live connection. Counters count framed Mycelium bytes (not transport overhead)."""

    #: "tcp", "quic", "tls" or "vsock".
    protocol: str = ""
    #: Static link cost added to the measured RTT (docs/wire.md §6.7).
    static_cost: int = 0
    #: Seconds without progress before a congested link is closed (tests shorten it).
    stuck_timeout: float = STUCK_TIMEOUT

    def __init__(self) -> None:
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.handler: LinkHandler | None = None
        #: When data packets last went over the link, either way (the node's clock; set per
        #: batch): idle punched links are closed by it (docs/nat.md §6).
        self.last_data = 0.0
        self._started = False
        self._pending: list[Packet] = []
        #: Frames held while the transport is congested, and what was dropped or coalesced.
        self.backlog = Backlog()
        #: Sends go to the backlog (the transport is full, or the backlog is not drained yet).
        self._congested = False
        self._transport_full = False
        self._draining = False
        self._handler_paused = False
        self._drained_since_check = False
        self._stuck_mark = 0
        self._stuck_timer: asyncio.TimerHandle | None = None

    @property
    @abc.abstractmethod
    def remote(self) -> str:
        """The remote endpoint as ``proto://addr`` (what the peer list shows for inbound peers)."""

    @property
    @abc.abstractmethod
    def connection_id(self) -> str:
        """Text for the API's ``nextHop``: ``TCP <local> <-> <remote>``, ``QUIC -> <remote>``, …"""

    @abc.abstractmethod
    def send(self, frame: bytes) -> None:
        """Queue one encoded frame (control or data); never blocks."""

    def start(self) -> None:
        """Begin delivering packets; called once the owner has registered the link. What
        arrived before (a peer talks as soon as the connection is up) is delivered now."""
        self._started = True
        if self._pending and self.handler is not None:
            pending, self._pending = self._pending, []
            self.handler.link_packets(self, pending)

    def _deliver(self, packets: list[Packet]) -> None:
        if not packets:
            return
        if self._started and self.handler is not None:
            self.handler.link_packets(self, packets)
        else:
            self._pending.extend(packets)

    def send_data(self, frame: bytes) -> None:
        """Queue one encoded data frame."""
        self.send_data_batch([frame])

    def send_data_batch(self, frames: list[bytes]) -> None:
        """Queue several data frames; every transport overrides this (one write on a stream,
        DATAGRAMs on QUIC) and keeps them apart from control frames while congested."""
        for frame in frames:
            self.send(frame)

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; ``link_closed`` follows."""

    # --- congestion ---------------------------------------------------------------------------
    def _queued_bytes(self) -> int:
        """Bytes the transport has accepted but not sent yet (progress is measured on it)."""
        return 0

    def _abort(self, reason: str) -> None:
        """Drop the connection now, without waiting to flush (the peer does not read)."""
        self.close()

    def _write_held(self, control: list[bytes], data: list[bytes]) -> None:
        """Write frames from the backlog straight to the transport (congestion is lifted)."""
        for frame in control:
            self.send(frame)
        if data:
            self.send_data_batch(data)

    def _transport_paused(self) -> None:
        """The transport's buffer went above its high-water mark."""
        self._transport_full = True
        if self._congested or self._draining:
            return  # already congested: the drain in progress notices and stops
        self._congested = True
        self._drained_since_check = False
        self._stuck_mark = self._queued_bytes()
        self._stuck_timer = asyncio.get_running_loop().call_later(
            self.stuck_timeout, self._check_stuck
        )
        if self.handler is not None:
            self._handler_paused = True
            self.handler.link_pause_writing(self)

    def _transport_resumed(self) -> None:
        """The transport drained below its low-water mark: send what was held, control first,
        until it fills up again; the congestion ends once nothing is held."""
        self._transport_full = False
        self._drained_since_check = True
        if not self._congested:
            return
        backlog = self.backlog
        self._congested = False
        self._draining = True
        try:
            while backlog and not self._transport_full:
                self._write_held(*backlog.take())
        finally:
            self._draining = False
        if self._transport_full or backlog:
            self._congested = True
        else:
            self._end_congestion()

    def _end_congestion(self) -> None:
        """No longer congested (drained, or closing): stop the watch, tell the handler once."""
        if self._stuck_timer is not None:
            self._stuck_timer.cancel()
            self._stuck_timer = None
        self._congested = False
        if self._handler_paused and self.handler is not None:
            self._handler_paused = False
            self.handler.link_resume_writing(self)

    def _check_stuck(self) -> None:
        self._stuck_timer = None
        if not self._congested:
            return
        queued = self._queued_bytes()
        if self._drained_since_check or self._stuck_mark - queued >= STUCK_PROGRESS:
            self._drained_since_check = False
            self._stuck_mark = queued
            self._stuck_timer = asyncio.get_running_loop().call_later(
                self.stuck_timeout, self._check_stuck
            )
            return
        b = self.backlog
        log.info(
            "closing %s: the peer read nothing for %.0f s (%d control frames coalesced, "
            "%d control and %d data frames dropped)",
            self.connection_id,
            self.stuck_timeout,
            b.coalesced,
            b.dropped_control,
            b.dropped_data,
        )
        self._abort(f"peer stopped reading for {self.stuck_timeout:.0f} s")
