"""Which peers we keep connections to (docs/wire.md §8).

Static and discovered peers are redialled on a 5 s tick, with no backoff and at most one attempt
in flight per endpoint. Inbound peers are never redialled; a new inbound connection from the same
address and port replaces the old one. Transports plug in through ``dialers``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

from .base import Link
from .endpoint import Endpoint

log = logging.getLogger(__name__)

RECONNECT_INTERVAL = 5.0
#: A discovered peer is forgotten after this many consecutive failed connection attempts.
DISCOVERED_MAX_FAILURES = 3

Dialer = Callable[[Endpoint], Awaitable[Link]]


class PeerType(Enum):
    STATIC = "static"
    INBOUND = "inbound"
    LINK_LOCAL_DISCOVERY = "linkLocalDiscovery"


class ConnectionState(Enum):
    ALIVE = "alive"
    CONNECTING = "connecting"
    DEAD = "dead"


class PeerExists(Exception):
    """The endpoint is already in the peer table."""


class PeerNotFound(Exception):
    """No peer with that endpoint."""


@dataclass
class PeerEntry:
    endpoint: Endpoint
    kind: PeerType
    discovered_at: float = field(default_factory=time.monotonic)
    last_connected: float | None = None
    link: Link | None = None
    connecting: bool = False
    failures: int = 0
    #: Bytes counted on earlier connections (static and discovered peers keep their totals).
    tx_before: int = 0
    rx_before: int = 0

    @property
    def state(self) -> ConnectionState:
        if self.link is not None:
            return ConnectionState.ALIVE
        if self.connecting:
            return ConnectionState.CONNECTING
        return ConnectionState.DEAD

    @property
    def tx_bytes(self) -> int:
        return self.tx_before + (self.link.tx_bytes if self.link else 0)

    @property
    def rx_bytes(self) -> int:
        return self.rx_before + (self.link.rx_bytes if self.link else 0)


class PeerManager:
    """Owns the peer table and the reconnect loop; the node owns the links themselves."""

    def __init__(
        self,
        dialers: dict[str, Dialer],
        on_connected: Callable[[Link], None],
        *,
        rewrite: Callable[[Endpoint], Endpoint] | None = None,
    ) -> None:
        self._dialers = dialers
        self._on_connected = on_connected
        self._rewrite = rewrite
        self._peers: dict[Endpoint, PeerEntry] = {}
        self._by_link: dict[Link, PeerEntry] = {}
        self._task: asyncio.Task[None] | None = None
        self._attempts: set[asyncio.Task[None]] = set()
        #: For metrics: peers added by type, and connection attempts started and finished. As in
        #: the reference, only discovered and inbound peers count as added: static ones (from
        #: the configuration or the API) never do.
        self.added: dict[PeerType, int] = dict.fromkeys(PeerType, 0)
        self.attempts_started = 0
        self.attempts_finished = 0

    # --- table ----------------------------------------------------------------------------
    def peers(self) -> list[PeerEntry]:
        return list(self._peers.values())

    def add_peer(self, endpoint: Endpoint, kind: PeerType = PeerType.STATIC) -> None:
        if endpoint in self._peers:
            raise PeerExists(str(endpoint))
        if endpoint.proto not in self._dialers:
            raise ValueError(f"protocol {endpoint.proto} is not available on this node")
        self._peers[endpoint] = PeerEntry(endpoint, kind)
        if self._task is not None:
            self._dial(self._peers[endpoint])

    def add_discovered(self, endpoint: Endpoint) -> bool:
        if endpoint in self._peers:
            return False
        self.add_peer(endpoint, PeerType.LINK_LOCAL_DISCOVERY)
        self.added[PeerType.LINK_LOCAL_DISCOVERY] += 1
        return True

    def remove_peer(self, endpoint: Endpoint) -> None:
        entry = self._peers.pop(endpoint, None)
        if entry is None:
            raise PeerNotFound(str(endpoint))
        if entry.link is not None:
            self._by_link.pop(entry.link, None)
            entry.link.close()

    def inbound(self, link: Link, endpoint: Endpoint) -> None:
        """Record an accepted connection; one from the same address:port replaces the old."""
        old = self._peers.get(endpoint)
        if old is not None and old.link is not None:
            self._by_link.pop(old.link, None)
            old.link.close()
        entry = PeerEntry(endpoint, PeerType.INBOUND, last_connected=time.monotonic())
        self.added[PeerType.INBOUND] += 1
        entry.link = link
        self._peers[endpoint] = entry
        self._by_link[link] = entry

    def link_closed(self, link: Link) -> None:
        entry = self._by_link.pop(link, None)
        if entry is None:
            return
        entry.tx_before += link.tx_bytes
        entry.rx_before += link.rx_bytes
        entry.link = None

    # --- reconnect loop -------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._attempts) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        for entry in self._peers.values():
            if entry.link is not None:
                entry.link.close()

    async def _run(self) -> None:
        while True:
            self.tick()
            await asyncio.sleep(RECONNECT_INTERVAL)

    def tick(self) -> None:
        for endpoint, entry in list(self._peers.items()):
            if entry.kind is PeerType.INBOUND:
                if entry.link is None:
                    del self._peers[endpoint]
            elif entry.link is None and not entry.connecting:
                self._dial(entry)

    def _dial(self, entry: PeerEntry) -> None:
        entry.connecting = True
        self.attempts_started += 1
        task = asyncio.get_running_loop().create_task(self._attempt(entry))
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    async def _attempt(self, entry: PeerEntry) -> None:
        endpoint = self._rewrite(entry.endpoint) if self._rewrite else entry.endpoint
        link: Link | None = None
        try:
            link = await self._dialers[endpoint.proto](endpoint)
        except (TimeoutError, OSError, ValueError) as exc:
            log.debug("connecting to %s failed: %s", entry.endpoint, exc)
        entry.connecting = False
        known = self._peers.get(entry.endpoint) is entry
        if known:  # like the reference: an attempt for a peer removed meanwhile never finishes
            self.attempts_finished += 1
        if link is None:
            entry.failures += 1
            if (
                known
                and entry.kind is PeerType.LINK_LOCAL_DISCOVERY
                and entry.failures >= DISCOVERED_MAX_FAILURES
            ):
                del self._peers[entry.endpoint]
            return
        if not known:
            link.close()
            return
        entry.failures = 0
        entry.link = link
        entry.last_connected = time.monotonic()
        self._by_link[link] = entry
        self._on_connected(link)
