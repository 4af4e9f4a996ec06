"""Peer table, reconnect backoff, host names and log lines (docs/wire.md §8), on a fake clock."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mycelium.links.base import Link
from mycelium.links.endpoint import Endpoint
from mycelium.links.peer_manager import (
    FIRST_RETRY,
    ISOLATED_AFTER,
    RECONNECT_INTERVAL,
    STABLE_LINK,
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
    def __init__(self, fail: bool = False, refuse: tuple[str, ...] = ()) -> None:
        self.fail = fail
        self.refuse = refuse
        self.calls: list[Endpoint] = []

    async def __call__(self, endpoint: Endpoint) -> Link:
        self.calls.append(endpoint)
        await asyncio.sleep(0)
        if self.fail or endpoint.host in self.refuse:
            raise ConnectionRefusedError(111, "Connection refused")
        return FakeLink(str(endpoint))


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


A = Endpoint.parse("tcp://[2001:db8::1]:9651")
B = Endpoint.parse("tcp://[fe80::1%2]:9651")
NAMED = Endpoint.parse("tcp://peer.example:9651")


def manager(dialer: Dialer, connected: list[Link] | None = None, **kw: object) -> PeerManager:
    sink = connected if connected is not None else []
    kw.setdefault("jitter", lambda: 1.0)  # the longest delay of each step
    return PeerManager({"tcp": dialer}, sink.append, **kw)  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_static_peer_dialled_and_counters_survive_reconnect() -> None:
    clock, dialer, connected = Clock(), Dialer(), []
    pm = manager(dialer, connected, clock=clock)
    pm.add_peer(A)
    pm.tick()
    (entry,) = pm.peers()
    assert entry.state is ConnectionState.CONNECTING
    await settle()
    assert entry.state is ConnectionState.ALIVE and len(connected) == 1 and pm.alive == 1
    connected[0].send(b"12345")
    clock.t += STABLE_LINK
    pm.link_closed(connected[0], "EOF")
    assert entry.state is ConnectionState.DEAD and entry.tx_bytes == 5
    pm.tick()  # a stable link died: the first, short delay applies
    assert len(dialer.calls) == 1
    clock.t += FIRST_RETRY
    pm.tick()
    await settle()
    assert len(connected) == 2 and entry.tx_bytes == 5
    with pytest.raises(PeerExists):
        pm.add_peer(A)


async def test_failed_dials_back_off_exponentially_up_to_the_reference_interval() -> None:
    clock, dialer = Clock(), Dialer(fail=True)
    pm = manager(dialer, clock=clock)
    pm.add_peer(A)
    pm.tick()
    pm.tick()  # still connecting: no second attempt
    await settle()
    assert len(dialer.calls) == 1
    gaps = []
    for _ in range(8):
        entry = pm.peers()[0]
        gaps.append(round(entry.next_try - clock.t, 3))
        clock.t = entry.next_try - 0.001
        pm.tick()  # not due yet
        await settle()
        clock.t = entry.next_try
        pm.tick()
        await settle()
    assert gaps == [0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0]
    assert len(dialer.calls) == 9 and pm.peers()[0].kind is PeerType.STATIC
    assert pm.peers()[0].last_error == "Connection refused"


async def test_jitter_spreads_each_delay_over_its_upper_half() -> None:
    for jitter, first in ((0.0, FIRST_RETRY / 2), (1.0, FIRST_RETRY)):
        clock = Clock()
        pm = manager(Dialer(fail=True), clock=clock, jitter=lambda j=jitter: j)
        pm.add_peer(A)
        pm.tick()
        await settle()
        assert pm.peers()[0].next_try - clock.t == pytest.approx(first)


async def test_a_flapping_peer_keeps_its_backoff_a_stable_one_resets_it() -> None:
    clock, connected = Clock(), []
    pm = manager(Dialer(), connected, clock=clock)
    pm.add_peer(A)
    delays = []
    for lived in (1.0, 1.0, 1.0, 1.0, STABLE_LINK):
        pm.tick()
        await settle()
        clock.t += lived
        pm.link_closed(connected[-1], "reset")
        entry = pm.peers()[0]
        delays.append(round(entry.next_try - clock.t, 3))
        clock.t = entry.next_try
    assert delays == [0.4, 0.8, 1.6, 3.2, 0.4]


async def test_host_names_are_resolved_before_every_attempt_and_each_address_tried() -> None:
    resolved: list[str] = []

    async def resolve(endpoint: Endpoint) -> list[str]:
        resolved.append(endpoint.host)
        return ["2001:db8::7", "192.0.2.7"]

    clock, dialer, connected = Clock(), Dialer(refuse=("2001:db8::7",)), []
    pm = manager(dialer, connected, clock=clock, resolve=resolve)
    pm.add_peer(NAMED)
    pm.tick()
    await settle()
    assert [str(e) for e in dialer.calls] == ["tcp://[2001:db8::7]:9651", "tcp://192.0.2.7:9651"]
    (entry,) = pm.peers()
    assert entry.state is ConnectionState.ALIVE and entry.address == "192.0.2.7"
    assert entry.endpoint == NAMED  # the table keeps the name
    pm.link_closed(connected[0])
    clock.t += RECONNECT_INTERVAL
    pm.tick()
    await settle()
    assert resolved == ["peer.example", "peer.example"]


async def test_resolution_failures_are_connection_failures() -> None:
    async def resolve(endpoint: Endpoint) -> list[str]:
        raise OSError(-2, "Name or service not known")

    clock, dialer = Clock(), Dialer()
    pm = manager(dialer, clock=clock, resolve=resolve)
    pm.add_peer(NAMED)
    pm.tick()
    await settle()
    (entry,) = pm.peers()
    assert dialer.calls == [] and entry.state is ConnectionState.DEAD
    assert entry.last_error == "cannot resolve peer.example: Name or service not known"


async def test_an_unexpected_dialer_error_or_a_hang_does_not_wedge_the_peer() -> None:
    async def broken(endpoint: Endpoint) -> Link:
        raise RuntimeError("transport bug")

    async def hangs(endpoint: Endpoint) -> Link:
        await asyncio.sleep(3600)
        raise AssertionError

    for dial, error in ((broken, "transport bug"), (hangs, "timed out")):
        pm = PeerManager({"tcp": dial}, lambda link: None, dial_timeout=0.05)
        pm.add_peer(A)
        pm.tick()
        async with asyncio.timeout(5):
            while pm.peers()[0].connecting:
                await asyncio.sleep(0.01)
        assert pm.peers()[0].last_error == error


async def test_discovered_peer_forgotten_after_three_failures() -> None:
    clock, dialer = Clock(), Dialer(fail=True)
    pm = manager(dialer, clock=clock)
    assert pm.add_discovered(B)
    assert not pm.add_discovered(B)  # same address, scope, port and protocol: no duplicate
    for _ in range(3):
        clock.t += RECONNECT_INTERVAL
        pm.tick()
        await settle()
    assert pm.peers() == []


async def test_inbound_replacement_and_removal() -> None:
    pm = manager(Dialer())
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
    pm = manager(Dialer(), connected)
    pm.add_peer(A)
    pm.tick()
    await settle()
    pm.remove_peer(A)
    assert connected[0].closed and pm.peers() == []


async def test_metric_counters_move_where_the_reference_counts() -> None:
    pm = manager(Dialer())
    pm.add_peer(A)  # static peers are never counted as added
    pm.add_discovered(B)
    pm.inbound(FakeLink("in"), Endpoint.parse("tcp://[2001:db8::9]:40000"))
    pm.tick()
    assert pm.attempts_started == 2
    pm.remove_peer(B)  # removed while connecting: its attempt never finishes
    await settle()
    assert pm.added == {PeerType.STATIC: 0, PeerType.INBOUND: 1, PeerType.LINK_LOCAL_DISCOVERY: 1}
    assert (pm.attempts_started, pm.attempts_finished) == (2, 1)


def info_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and r.name == "mycelium.links.peer_manager"
    ]


async def test_an_unreachable_peer_is_logged_once_then_summarised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "mycelium")
    clock = Clock()
    pm = manager(Dialer(fail=True), clock=clock)
    pm.add_peer(A)
    for _ in range(100):  # about 8 minutes of retries
        clock.t += RECONNECT_INTERVAL
        pm.tick()
        await settle()
    assert info_lines(caplog) == ["cannot connect to peer"]
    first = next(r for r in caplog.records if r.getMessage() == "cannot connect to peer")
    assert first.fields["error"] == "Connection refused"  # type: ignore[attr-defined]
    clock.t += 600
    pm.tick()
    await settle()
    summary = [r for r in caplog.records if r.levelno == logging.INFO][-1]
    assert summary.getMessage() == "peer still unreachable"
    assert summary.fields["failures"] == 101  # type: ignore[attr-defined]


async def test_a_flapping_peer_gets_three_lines_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "mycelium")
    clock, connected = Clock(), []
    pm = manager(Dialer(), connected, clock=clock)
    pm.add_peer(A)
    for _ in range(10):  # connected and lost every second
        pm.tick()
        await settle()
        clock.t += 0.5
        pm.link_closed(connected[-1], "reset")
        clock.t = max(clock.t + 0.5, pm.peers()[0].next_try)
    lines = info_lines(caplog)
    assert lines[:3] == ["peer connected", "peer disconnected", "peer connected"]
    assert len(lines) <= 6  # at most three per minute, whatever happened in between


async def test_an_isolated_node_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "mycelium")
    clock, connected = Clock(), []
    pm = manager(Dialer(), connected, clock=clock)
    pm.tick()
    clock.t += ISOLATED_AFTER - 1
    pm.tick()
    assert not any(r.levelno == logging.WARNING for r in caplog.records)
    clock.t += 1
    pm.tick()
    pm.tick()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [w.getMessage() for w in warnings] == ["no peer connected: this node is isolated"]
    assert "--public-peers" in warnings[0].fields["hint"]  # type: ignore[attr-defined]
    pm.add_peer(A)  # a peer comes and goes: a new episode warns again
    pm.tick()
    await settle()
    pm.tick()
    pm.link_closed(connected[0])
    pm.remove_peer(A)
    clock.t += ISOLATED_AFTER
    pm.tick()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
