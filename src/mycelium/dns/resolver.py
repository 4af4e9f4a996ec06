"""The DNS forwarder's runtime: the UDP socket on [::]:53, one upstream socket per query.

Every query goes, unchanged, to the upstream ``upstream.choose`` last picked (re-chosen every
30 s, and on queries at most once a second while the choice is the fallback), from a fresh
socket on a random port; the first reply from that upstream with the query's ID is returned
unchanged, and anything else within 5 s (the reference's timeout) becomes SERVFAIL.
The reference rebuilds both directions and loses EDNS, authority records and the RCODE; passing
messages through keeps all of it. Queries in flight are bounded; beyond the bound, and for
malformed datagrams, the answer is SERVFAIL or a counted silent drop, never an exception.

Queries to the overlay go out through the operating system (the TUN device), as the reference's
do; on a ``--no-tun`` node only the IPv4 fallback can answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

from . import message
from .upstream import EVALUATE_INTERVAL, FALLBACK, PUBLIC_NODES

log = logging.getLogger(__name__)

QUERY_TIMEOUT = 5.0
#: While on the fallback, queries make us look for a reachable public node this often.
FALLBACK_RECHECK = 1.0
MAX_IN_FLIGHT = 256

#: ``chooser(candidates) -> address or None``, run against the live router.
Chooser = Callable[[Sequence[bytes]], bytes | None]


class Counters:
    __slots__ = ("answered", "dropped", "failed", "overloaded")

    def __init__(self) -> None:
        self.answered = 0
        self.failed = 0  # upstream silent, unreachable or refusing: SERVFAIL
        self.overloaded = 0  # too many queries in flight: SERVFAIL at once
        self.dropped = 0  # not a query


class _Upstream(asyncio.DatagramProtocol):
    """One query's socket, connected to the upstream (the kernel drops datagrams from anyone
    else): resolves with the first reply carrying the query's ID."""

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if (
            len(data) >= message.HEADER.size
            and message.query_id(data) == self.ident
            and not self.reply.done()
        ):
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


class DnsForwarder(asyncio.DatagramProtocol):
    def __init__(
        self,
        chooser: Chooser,
        *,
        candidates: Sequence[bytes] = PUBLIC_NODES,
        fallback: str = FALLBACK,
        upstream_port: int = 53,
        timeout: float = QUERY_TIMEOUT,
        max_in_flight: int = MAX_IN_FLIGHT,
        fallback_recheck: float = FALLBACK_RECHECK,
    ) -> None:
        self._choose = chooser
        self.candidates = tuple(candidates)
        self.fallback = fallback
        self.upstream_port = upstream_port
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.fallback_recheck = fallback_recheck
        self.upstream = fallback
        self.counters = Counters()
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._evaluator: asyncio.Task[None] | None = None
        self._chosen_at = 0.0

    # --- lifecycle ----------------------------------------------------------------------------
    async def bind(self, host: str = "::", port: int = 53) -> None:
        """Listen (dual-stack on ``::``); raises OSError with the reason when the port is taken."""
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(
                f"DNS resolver cannot listen on [{host}]:{port}: {exc.strerror}"
            ) from None
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)

    def start(self) -> None:
        """Choose an upstream now and every 30 s."""
        self._evaluator = asyncio.get_running_loop().create_task(self._evaluate())

    async def close(self) -> None:
        tasks = [t for t in (self._evaluator, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    async def _evaluate(self) -> None:
        while True:
            self._rechoose()
            await asyncio.sleep(EVALUATE_INTERVAL)

    def _rechoose(self) -> None:
        self._chosen_at = asyncio.get_running_loop().time()
        best = self._choose(self.candidates)
        upstream = str(ipaddress.IPv6Address(best)) if best is not None else self.fallback
        if upstream != self.upstream:
            log.info("DNS queries now go to %s", upstream)
        self.upstream = upstream

    # --- queries ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if not message.is_query(data):
            self.counters.dropped += 1
            return
        # On the fallback (typically just after start, before any route is known), look again
        # at most once a second instead of waiting out the 30 s: a route may have appeared.
        if (
            self.upstream == self.fallback
            and self._evaluator is not None
            and asyncio.get_running_loop().time() - self._chosen_at >= self.fallback_recheck
        ):
            self._rechoose()
        if len(self._tasks) >= self.max_in_flight:
            self.counters.overloaded += 1
            self._answer(message.servfail(data), addr)
            return
        task = asyncio.get_running_loop().create_task(self._forward(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _answer(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

    async def _forward(self, query: bytes, addr: tuple[Any, ...]) -> None:
        host = self.upstream
        loop = asyncio.get_running_loop()
        transport = None
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Upstream(message.query_id(query)),
                remote_addr=(host, self.upstream_port),
            )
            transport.sendto(query)
            reply = await asyncio.wait_for(protocol.reply, self.timeout)
        except (OSError, TimeoutError) as exc:
            log.debug("DNS query via %s failed: %s", host, exc)
            self.counters.failed += 1
            self._answer(message.servfail(query), addr)
            return
        finally:
            if transport is not None:
                with contextlib.suppress(Exception):
                    transport.close()
        self.counters.answered += 1
        self._answer(reply, addr)
