"""What every transport provides to the node, and what the node provides to every transport.

A link is one live connection to a neighbour. It delivers decoded packets up in batches and
accepts encoded frames down; nothing above it knows which transport carries them.
"""

from __future__ import annotations

import abc
from typing import Protocol

from ..wire.stream import Packet


class LinkHandler(Protocol):
    """Implemented by the node runtime."""

    def link_packets(self, link: Link, packets: list[Packet]) -> None:
        """Packets decoded from one read, in arrival order."""

    def link_closed(self, link: Link, reason: str) -> None:
        """The link is gone (EOF, error, framing violation, or ``close()``). Called once."""

    def link_pause_writing(self, link: Link) -> None:
        """The link's send buffer is above its high-water mark: stop producing for it."""

    def link_resume_writing(self, link: Link) -> None:
        """The link's send buffer drained below its low-water mark."""


class Link(abc.ABC):
    """One live connection. Counters count framed Mycelium bytes (not transport overhead)."""

    #: "tcp", "quic", "tls" or "vsock".
    protocol: str = ""
    #: Static link cost added to the measured RTT (docs/wire.md §6.7).
    static_cost: int = 0

    def __init__(self) -> None:
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.handler: LinkHandler | None = None
        self._started = False
        self._pending: list[Packet] = []

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
        """Queue one encoded data frame; QUIC overrides this to use a DATAGRAM when it fits."""
        self.send(frame)

    def send_data_batch(self, frames: list[bytes]) -> None:
        """Queue several data frames; stream transports override this with one write."""
        for frame in frames:
            self.send_data(frame)

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection; ``link_closed`` follows."""
