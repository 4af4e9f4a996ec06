"""The DNS forwarder on loopback, with fake upstream resolvers."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import AsyncIterator, Callable

import pytest

from mycelium.dns import message
from mycelium.dns.resolver import DnsForwarder

QUESTION = b"\x07example\x03com\x00\x00\x1c\x00\x01"
EDNS = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"


def query(ident: int = 0x1234, flags: int = 0x0100) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 1) + QUESTION + EDNS


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers with ``respond(query)`` (None: stays silent); remembers what it was asked."""

    def __init__(self, respond: Callable[[bytes], bytes | None]) -> None:
        self.respond = respond
        self.seen: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        self.seen.append(data)
        reply = self.respond(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


def answer(q: bytes) -> bytes:
    return q[:2] + b"\x81\x80" + q[4:] + b"answer-records-and-all"


async def upstream(
    host: str, respond: Callable[[bytes], bytes | None], port: int = 0
) -> tuple[FakeUpstream, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: FakeUpstream(respond), local_addr=(host, port)
    )
    return protocol, transport.get_extra_info("sockname")[1]


async def ask(port: int, data: bytes, timeout: float = 2.0) -> bytes | None:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, reply: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
            if not got.done():
                got.set_result(reply)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("::1", port))
    transport.sendto(data)
    try:
        return await asyncio.wait_for(got, timeout)
    except TimeoutError:
        return None
    finally:
        transport.close()


@pytest.fixture
async def forwarders() -> AsyncIterator[list[DnsForwarder]]:
    made: list[DnsForwarder] = []
    yield made
    for f in made:
        await f.close()


async def start(
    made: list[DnsForwarder], port: int, choice: bytes | None = None, **kwargs: object
) -> DnsForwarder:
    f = DnsForwarder(
        lambda candidates: choice,
        candidates=[ipaddress.IPv6Address("::1").packed],
        fallback="127.0.0.1",
        upstream_port=port,
        **kwargs,  # type: ignore[arg-type]
    )
    made.append(f)
    await f.bind("::1", 0)
    f.start()
    await asyncio.sleep(0)  # the first choice is made at once
    return f


async def test_queries_and_answers_pass_through_unchanged(forwarders: list[DnsForwarder]) -> None:
    fake, port = await upstream("127.0.0.1", answer)
    f = await start(forwarders, port)  # nothing chosen: the IPv4 fallback
    q = query()
    assert await ask(f.port, q) == answer(q)
    assert fake.seen == [q]  # EDNS and all
    assert f.counters.answered == 1


async def test_the_chosen_overlay_upstream_is_used(forwarders: list[DnsForwarder]) -> None:
    chosen, port = await upstream("::1", answer)
    fallback, _ = await upstream("127.0.0.1", answer, port)
    f = await start(forwarders, port, choice=ipaddress.IPv6Address("::1").packed)
    assert f.upstream == "::1"
    assert await ask(f.port, query(7)) == answer(query(7))
    assert len(chosen.seen) == 1 and fallback.seen == []


async def test_on_the_fallback_a_query_looks_for_a_route_again(
    forwarders: list[DnsForwarder],
) -> None:
    chosen, port = await upstream("::1", answer)
    choice: list[bytes | None] = [None]
    f = DnsForwarder(
        lambda candidates: choice[0],
        fallback="127.0.0.1",
        upstream_port=port,
        fallback_recheck=0.0,
    )
    forwarders.append(f)
    await f.bind("::1", 0)
    f.start()
    await asyncio.sleep(0)
    assert f.upstream == "127.0.0.1"
    choice[0] = ipaddress.IPv6Address("::1").packed  # a route to a public node appeared
    assert await ask(f.port, query(9)) == answer(query(9))
    assert f.upstream == "::1" and len(chosen.seen) == 1


async def test_silence_or_a_wrong_id_is_servfail_after_the_timeout(
    forwarders: list[DnsForwarder],
) -> None:
    _, port = await upstream("127.0.0.1", lambda q: b"\x99\x99" + answer(q)[2:])
    f = await start(forwarders, port, timeout=0.2)
    reply = await ask(f.port, query(0xBEEF, flags=0x0100))
    assert reply is not None
    ident, flags, qd, an, ns, ar = message.HEADER.unpack_from(reply)
    assert (ident, flags & 0x8000, flags & 0x0100, flags & 0xF) == (0xBEEF, 0x8000, 0x0100, 2)
    assert (qd, an, ns, ar) == (1, 0, 0, 0) and reply[12:] == QUESTION
    assert f.counters.failed == 1


async def test_malformed_datagrams_are_dropped(forwarders: list[DnsForwarder]) -> None:
    fake, port = await upstream("127.0.0.1", answer)
    f = await start(forwarders, port)
    # Too short, an answer rather than a query, two questions.
    for junk in (b"\x00" * 5, answer(query()), struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0)):
        assert await ask(f.port, junk, timeout=0.2) is None
    assert f.counters.dropped == 3 and fake.seen == []


async def test_too_many_queries_in_flight_are_refused_at_once(
    forwarders: list[DnsForwarder],
) -> None:
    _, port = await upstream("127.0.0.1", lambda q: None)
    f = await start(forwarders, port, timeout=1.0, max_in_flight=1)
    first = asyncio.ensure_future(ask(f.port, query(1)))
    await asyncio.sleep(0.1)
    reply = await ask(f.port, query(2), timeout=0.5)
    assert reply is not None and reply[3] & 0xF == 2 and f.counters.overloaded == 1
    assert (await first) is not None  # SERVFAIL at its own timeout


async def test_a_taken_port_is_a_clear_error(forwarders: list[DnsForwarder]) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as taken:
        taken.bind(("::1", 0))
        f = DnsForwarder(lambda c: None)
        with pytest.raises(OSError, match=r"DNS resolver cannot listen on \[::1\]:\d+"):
            await f.bind("::1", taken.getsockname()[1])


def test_servfail_without_a_parsable_question() -> None:
    bad = struct.pack("!HHHHHH", 5, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c"
    assert message.is_query(bad)
    assert message.servfail(bad) == struct.pack("!HHHHHH", 5, 0x8182, 0, 0, 0, 0)
