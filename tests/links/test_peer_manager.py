"""Peer table and reconnect rules (docs/wire.md §8, §13 items 30 to 32), with fake dialers."""

from __future__ import annotations

import asyncio

import pytest

from mycelium.links.base import Link
from mycelium.links.endpoint import Endpoint
from mycelium.links.peer_manager import (
    ConnectionState,
    PeerExists,
    PeerManager,
    PeerNotFound,
    PeerType,
)


class FakeLink(Link):
    protocol = "tcp"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.closed = False

    @property
    def remote(self) -> str:
        return self.name

    @property
    def connection_id(self) -> str:
        return self.name

    def send(self, frame: bytes) -> None:
        self.tx_bytes += len(frame)

    def close(self) -> None:
        self.closed = True


class Dialer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[Endpoint] = []

    async def __call__(self, endpoint: Endpoint) -> Link:
        self.calls.append(endpoint)
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionRefusedError("refused")
        return FakeLink(str(endpoint))


A = Endpoint.parse("tcp://[2001:db8::1]:9651")
B = Endpoint.parse("tcp://[fe80::1%2]:9651")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_static_peer_dialled_and_counters_survive_reconnect() -> None:
    dialer, connected = Dialer(), []
    pm = PeerManager({"tcp": dialer}, connected.append)
    pm.add_peer(A)
    pm.tick()
    (entry,) = pm.peers()
    assert entry.state is ConnectionState.CONNECTING
    await settle()
    assert entry.state is ConnectionState.ALIVE and len(connected) == 1
    connected[0].send(b"12345")
    pm.link_closed(connected[0])
    assert entry.state is ConnectionState.DEAD and entry.tx_bytes == 5
    pm.tick()
    await settle()
    assert len(connected) == 2 and entry.tx_bytes == 5
    with pytest.raises(PeerExists):
        pm.add_peer(A)


async def test_one_attempt_in_flight_and_no_backoff() -> None:
    dialer = Dialer(fail=True)
    pm = PeerManager({"tcp": dialer}, lambda link: None)
    pm.add_peer(A)
    pm.tick()
    pm.tick()  # still connecting: no second attempt
    await settle()
    assert len(dialer.calls) == 1
    for _ in range(10):  # a failing static peer is retried at every tick, forever
        pm.tick()
        await settle()
    assert len(dialer.calls) == 11
    assert pm.peers()[0].kind is PeerType.STATIC


async def test_discovered_peer_forgotten_after_three_failures() -> None:
    dialer = Dialer(fail=True)
    pm = PeerManager({"tcp": dialer}, lambda link: None)
    assert pm.add_discovered(B)
    assert not pm.add_discovered(B)  # same address, scope, port and protocol: no duplicate
    for _ in range(3):
        pm.tick()
        await settle()
    assert pm.peers() == []


async def test_inbound_replacement_and_removal() -> None:
    pm = PeerManager({"tcp": Dialer()}, lambda link: None)
    first, second = FakeLink("1"), FakeLink("2")
    pm.inbound(first, A)
    pm.inbound(second, A)
    assert first.closed and not second.closed
    (entry,) = pm.peers()
    assert entry.kind is PeerType.INBOUND and entry.link is second
    pm.link_closed(second)
    pm.tick()  # dead inbound entries are dropped, never redialled
    assert pm.peers() == []
    pm.inbound(first, B)
    pm.remove_peer(B)
    with pytest.raises(PeerNotFound):
        pm.remove_peer(B)


async def test_remove_kills_the_connection() -> None:
    connected: list[Link] = []
    pm = PeerManager({"tcp": Dialer()}, connected.append)
    pm.add_peer(A)
    pm.tick()
    await settle()
    pm.remove_peer(A)
    assert connected[0].closed and pm.peers() == []


async def test_metric_counters_move_where_the_reference_counts() -> None:
    pm = PeerManager({"tcp": Dialer()}, lambda link: None)
    pm.add_peer(A)  # static peers are never counted as added
    pm.add_discovered(B)
    pm.inbound(FakeLink("in"), Endpoint.parse("tcp://[2001:db8::9]:40000"))
    pm.tick()
    assert pm.attempts_started == 2
    pm.remove_peer(B)  # removed while connecting: its attempt never finishes
    await settle()
    assert pm.added == {PeerType.STATIC: 0, PeerType.INBOUND: 1, PeerType.LINK_LOCAL_DISCOVERY: 1}
    assert (pm.attempts_started, pm.attempts_finished) == (2, 1)
