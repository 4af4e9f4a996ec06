"""Which peers we keep connections to, and when we dial them (docs/wire.md §8).

Static and discovered peers are dialled at once; while they fail, again after a delay that
doubles from ``FIRST_RETRY`` up to the reference's fixed 5 s interval, with jitter (nodes started
together connect within a fraction of a second, and never redial in lockstep). A link that dies
within ``STABLE_LINK`` seconds does not reset that delay, so a flapping peer is redialled at most
every few seconds. Host names are resolved before every attempt (the system resolver, off the
event loop) and each address is tried in turn. At most one attempt per peer is in flight.
Inbound peers are never redialled; a new inbound connection from the same address and port
replaces the old one. A discovered peer is forgotten after three failed attempts in a row.

Every connection, acceptance, failure and loss is logged at INFO, limited per peer so that an
unreachable or flapping peer cannot fill the log; a node that stays without any live peer for
``ISOLATED_AFTER`` seconds says so once, with what to do about it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

from ..logs import LogLimiter, fields
from .base import Link
from .endpoint import Endpoint

log = logging.getLogger(__name__)

#: The reference's fixed retry interval, our backoff's ceiling.
RECONNECT_INTERVAL = 5.0
#: The first retry comes after 0.5-1 times this, each further one after twice as long.
FIRST_RETRY = 0.4
#: A link that lived this long resets the backoff when it dies.
STABLE_LINK = 30.0
#: One connection attempt (per resolved address) gives up after this long.
DIAL_TIMEOUT = 10.0
RESOLVE_TIMEOUT = 10.0
#: A discovered peer is forgotten after this many consecutive failed connection attempts.
DISCOVERED_MAX_FAILURES = 3
#: Seconds without any live peer before the node warns that it is isolated.
ISOLATED_AFTER = 30.0
#: Connection failures of one peer: the first is logged, then one line per this many seconds.
FAILURE_LOG_INTERVAL = 600.0

Dialer = Callable[[Endpoint], Awaitable[Link]]
#: A host name endpoint -> the literal addresses to try, in order.
Resolver = Callable[[Endpoint], Awaitable[list[str]]]

ISOLATION_HINT = (
    "add peers with --peers (or `peers` in the config file, or `mycelium peers add`), "
    "or join the public network with --public-peers"
)


class PeerType(Enum):
    STATIC = "static"
    INBOUND = "inbound"
    LINK_LOCAL_DISCOVERY = "linkLocalDiscovery"
    #: Ours: a direct QUIC link made through NATs (docs/nat.md); never redialled.
    HOLE_PUNCHED = "holePunched"


#: Peers the manager dials (and redials); the others exist only while their link lives.
_DIALLED = (PeerType.STATIC, PeerType.LINK_LOCAL_DISCOVERY)


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
    #: Consecutive failed attempts (reset by a connection).
    failures: int = 0
    #: The backoff exponent: grows with every failure or short-lived link.
    retries: int = 0
    #: When the next attempt is due (the manager's clock).
    next_try: float = 0.0
    last_error: str | None = None
    #: The address a host-name peer's current link went to.
    address: str | None = None
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


async def system_resolve(endpoint: Endpoint) -> list[str]:
    """The addresses of a host name, in the order the system prefers them (getaddrinfo runs in
    the loop's executor: the event loop never blocks on DNS)."""
    kind = socket.SOCK_DGRAM if endpoint.proto == "quic" else socket.SOCK_STREAM
    infos = await asyncio.get_running_loop().getaddrinfo(endpoint.host, endpoint.port, type=kind)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class PeerManager:
    """Owns the peer table and the reconnect loop; the node owns the links themselves."""

    def __init__(
        self,
        dialers: dict[str, Dialer],
        on_connected: Callable[[Link], None],
        *,
        resolve: Resolver = system_resolve,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        dial_timeout: float = DIAL_TIMEOUT,
    ) -> None:
        self._dialers = dialers
        self._on_connected = on_connected
        self._resolve = resolve
        self._clock = clock
        self._jitter = jitter
        self._dial_timeout = dial_timeout
        self._peers: dict[Endpoint, PeerEntry] = {}
        self._by_link: dict[Link, PeerEntry] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._attempts: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        #: Since when no peer has been alive (None while one is), and whether we said so.
        self._alone_since: float | None = None
        self._warned_alone = False
        self._failure_log = LogLimiter(1, FAILURE_LOG_INTERVAL, clock=clock)
        self._event_log = LogLimiter(3, 60.0, clock=clock)
        #: For metrics: peers added by type, and connection attempts started and finished. As in
        #: the reference, only discovered and inbound peers count as added: static ones (from
        #: the configuration or the API) never do.
        self.added: dict[PeerType, int] = dict.fromkeys(
            (PeerType.STATIC, PeerType.INBOUND, PeerType.LINK_LOCAL_DISCOVERY), 0
        )
        self.attempts_started = 0
        self.attempts_finished = 0

    # --- table ----------------------------------------------------------------------------
    def peers(self) -> list[PeerEntry]:
        return list(self._peers.values())

    @property
    def alive(self) -> int:
        return len(self._by_link)

    def add_peer(self, endpoint: Endpoint, kind: PeerType = PeerType.STATIC) -> None:
        if endpoint in self._peers:
            raise PeerExists(str(endpoint))
        if endpoint.proto not in self._dialers:
            raise ValueError(f"protocol {endpoint.proto} is not available on this node")
        entry = self._peers[endpoint] = PeerEntry(endpoint, kind, discovered_at=self._clock())
        if self._task is not None:
            self._dial(entry)

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
        self._failure_log.forget(endpoint)
        if entry.link is not None:
            self._by_link.pop(entry.link, None)
            entry.link.close()

    def inbound(self, link: Link, endpoint: Endpoint, kind: PeerType = PeerType.INBOUND) -> None:
        """Record an accepted (or punched) connection; one with the same address:port replaces
        the old."""
        old = self._peers.get(endpoint)
        if old is not None and old.link is not None:
            self._by_link.pop(old.link, None)
            old.link.close()
        now = self._clock()
        entry = PeerEntry(endpoint, kind, discovered_at=now, last_connected=now)
        if kind in self.added:  # punched links are NAT traversal's to count
            self.added[kind] += 1
        entry.link = link
        self._peers[endpoint] = entry
        self._by_link[link] = entry
        self._alone_since = None
        self._event("inbound peer accepted", entry, endpoint.host)

    def link_closed(self, link: Link, reason: str = "") -> None:
        entry = self._by_link.pop(link, None)
        if entry is None:
            return
        now = self._clock()
        entry.tx_before += link.tx_bytes
        entry.rx_before += link.rx_bytes
        entry.link = None
        lived = now - (entry.last_connected if entry.last_connected is not None else now)
        self._event(
            "peer disconnected",
            entry,
            entry.endpoint if entry.kind in _DIALLED else entry.endpoint.host,
            reason=reason or None,
            connected_for=f"{lived:.1f}s",
        )
        if entry.kind in _DIALLED:
            if lived >= STABLE_LINK:
                entry.retries = 0
            entry.next_try = now + self._backoff(entry)
        if not self._by_link and self._alone_since is None:
            self._alone_since = now
            self._warned_alone = False
        self._wake.set()

    # --- reconnect loop -------------------------------------------------------------------
    def start(self) -> None:
        self._alone_since = None if self._by_link else self._clock()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopped = True
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
            self._wake.clear()
            delay = max(0.01, self._next_wake() - self._clock())
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # coincides with the event being set (a link closing as the node stops).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _next_wake(self) -> float:
        now = self._clock()
        wake = now + RECONNECT_INTERVAL
        for entry in self._peers.values():
            if entry.kind in _DIALLED and entry.link is None and not entry.connecting:
                wake = min(wake, entry.next_try)
        if self._alone_since is not None and not self._warned_alone:
            wake = min(wake, self._alone_since + ISOLATED_AFTER)
        return wake

    def tick(self) -> None:
        """Dial every peer whose retry is due; forget dead inbound peers; warn if alone."""
        now = self._clock()
        for endpoint, entry in list(self._peers.items()):
            if entry.kind not in _DIALLED:
                if entry.link is None:
                    del self._peers[endpoint]
            elif entry.link is None and not entry.connecting and entry.next_try <= now:
                self._dial(entry)
        self._check_isolated(now)

    def _backoff(self, entry: PeerEntry) -> float:
        """The delay before the next attempt (and one step further for the one after)."""
        base = min(RECONNECT_INTERVAL, FIRST_RETRY * 2 ** min(entry.retries, 16))
        entry.retries += 1
        return base * (0.5 + 0.5 * self._jitter())

    def _dial(self, entry: PeerEntry) -> None:
        if self._stopped:
            return
        entry.connecting = True
        self.attempts_started += 1
        task = asyncio.get_running_loop().create_task(self._attempt(entry))
        self._attempts.add(task)
        task.add_done_callback(self._attempts.discard)

    async def _connect(self, entry: PeerEntry) -> tuple[Link | None, str | None, str | None]:
        """(link, address it went to, last error): every resolved address in turn."""
        endpoint = entry.endpoint
        hosts = [endpoint.host]
        if endpoint.is_hostname:
            try:
                async with asyncio.timeout(RESOLVE_TIMEOUT):
                    hosts = await self._resolve(endpoint)
            except (OSError, TimeoutError) as exc:
                return None, None, f"cannot resolve {endpoint.host}: {_describe(exc)}"
            if not hosts:
                return None, None, f"{endpoint.host} has no address"
        error = None
        dialer = self._dialers[endpoint.proto]
        for host in hosts:
            try:
                async with asyncio.timeout(self._dial_timeout):
                    return await dialer(endpoint.with_host(host)), host, None
            except Exception as exc:  # a transport's odd error must not wedge the peer
                error = _describe(exc)
                if len(hosts) > 1:
                    error = f"{host}: {error}"
        return None, None, error

    async def _attempt(self, entry: PeerEntry) -> None:
        link, address, error = await self._connect(entry)
        entry.connecting = False
        now = self._clock()
        known = self._peers.get(entry.endpoint) is entry
        if known:  # like the reference: an attempt for a peer removed meanwhile never finishes
            self.attempts_finished += 1
        if link is None:
            self._failed(entry, error or "failed", known, now)
            return
        if not known:
            link.close()
            return
        failures, entry.failures = entry.failures, 0
        entry.last_error = None
        entry.link = link
        entry.address = address if entry.endpoint.is_hostname else None
        entry.last_connected = now
        self._by_link[link] = entry
        self._alone_since = None
        self._failure_log.forget(entry.endpoint)
        self._event(
            "peer connected",
            entry,
            entry.endpoint,
            address=entry.address,
            after_failures=failures or None,
        )
        self._on_connected(link)

    def _failed(self, entry: PeerEntry, error: str, known: bool, now: float) -> None:
        entry.failures += 1
        entry.last_error = error
        entry.next_try = now + self._backoff(entry)
        self._wake.set()
        if not known:
            return
        discovered = entry.kind is PeerType.LINK_LOCAL_DISCOVERY
        if discovered and entry.failures >= DISCOVERED_MAX_FAILURES:
            del self._peers[entry.endpoint]
        held = None if discovered else self._failure_log.allow(entry.endpoint)
        level = logging.DEBUG if held is None else logging.INFO
        log.log(
            level,
            "cannot connect to peer" if entry.failures == 1 else "peer still unreachable",
            extra=fields(
                peer=entry.endpoint,
                error=error,
                failures=entry.failures if entry.failures > 1 else None,
                retry_in=f"{entry.next_try - now:.1f}s",
            ),
        )

    def _event(self, message: str, entry: PeerEntry, key: object, **extra: object) -> None:
        """A connection event at INFO, unless this peer already had its share this minute."""
        held = self._event_log.allow(key)
        log.log(
            logging.DEBUG if held is None else logging.INFO,
            message,
            extra=fields(peer=entry.endpoint, **extra, held_back=held or None),
        )

    def _check_isolated(self, now: float) -> None:
        if self._by_link:
            self._alone_since = None
            return
        if self._alone_since is None:
            self._alone_since = now
            self._warned_alone = False
        if self._warned_alone or now - self._alone_since < ISOLATED_AFTER:
            return
        self._warned_alone = True
        dialled = [e for e in self._peers.values() if e.kind in _DIALLED]
        errors = sorted({e.last_error for e in dialled if e.last_error})
        log.warning(
            "no peer connected: this node is isolated",
            extra=fields(
                seconds=int(now - self._alone_since),
                peers=len(dialled),
                errors="; ".join(errors[:3]) or None,
                hint=ISOLATION_HINT,
            ),
        )
