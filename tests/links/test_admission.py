"""Inbound connection limits: total and per source, a silent connection is closed before it
costs the router anything, and the descriptor limit is raised and respected."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest

from link_recorder import Recorder, wait_for
from mycelium.links import admission, tcp
from mycelium.links.admission import InboundLimits, inbound_budget, source_key
from mycelium.wire import Hello, encode_control


def test_sources_are_counted_per_ipv6_64_and_per_ipv4_address() -> None:
    assert source_key("2001:db8:1:2::1") == source_key("2001:db8:1:2:ffff::9")
    assert source_key("2001:db8:1:2::1") != source_key("2001:db8:1:3::1")
    assert source_key("::ffff:192.0.2.1") == source_key("192.0.2.1") == "192.0.2.1"
    assert source_key("192.0.2.1") != source_key("192.0.2.2")
    # on a LAN every neighbour is in fe80::/64, and loopback is one host: counted one by one
    assert source_key("fe80::1%3") != source_key("fe80::2%3")
    assert source_key("::1") == "::1"
    assert source_key("3") == "3"  # a vsock CID


def test_limits_refuse_past_the_total_and_per_source_and_release_once() -> None:
    limits = InboundLimits(total=5, per_source=2)
    a1, a2 = limits.acquire("2001:db8::1"), limits.acquire("2001:db8::2")
    assert a1 and a2 and limits.acquire("2001:db8::3") is None  # same /64
    others = [limits.acquire(f"2001:db8:{i}::1") for i in range(1, 5)]
    assert all(others[:3]) and others[3] is None  # total of 5
    assert (limits.refused_per_source, limits.refused_total) == (1, 1)
    a1()
    a1()  # releasing twice frees one slot only
    assert limits.held == 4
    assert limits.acquire("2001:db8::7") is not None
    assert limits.acquire("2001:db8::8") is None


def test_the_budget_leaves_descriptors_for_everything_else() -> None:
    assert inbound_budget(256) == 192  # the attacked node: 300 connections used to break it
    assert inbound_budget(1024) == 768
    assert inbound_budget(1 << 20) == admission.MAX_INBOUND
    assert inbound_budget(10) == 1


def test_raise_nofile_limit_lifts_the_soft_limit_to_the_hard_one() -> None:
    script = (
        "import resource\n"
        "from mycelium.links.admission import raise_nofile_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "print(raise_nofile_limit() == hard == resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr


async def _connect(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("::1", port))
    return sock


async def _closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            return await loop.sock_recv(sock, 100) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_a_silent_connection_is_closed_and_never_becomes_a_peer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admission, "ADMISSION_TIMEOUT", 0.3)
    rec = Recorder()
    server = await tcp.listen("::1", 0, rec, rec.accepted)
    port = server.sockets[0].getsockname()[1]
    try:
        silent, partial = await _connect(port), await _connect(port)
        await asyncio.get_running_loop().sock_sendall(partial, b"\x01\x01\x00")  # never finished
        assert await _closed_by_server(silent) and await _closed_by_server(partial)
        assert rec.links == [] and rec.closed == []
        speaker = await _connect(port)
        await asyncio.get_running_loop().sock_sendall(speaker, encode_control(Hello(5)))
        await wait_for(lambda: rec.links)
        assert rec.packets == [Hello(5)]
        await asyncio.sleep(0.5)  # past the admission timeout: an opened link stays
        assert not rec.closed
        for sock in (silent, partial, speaker):
            sock.close()
    finally:
        server.close()


async def test_connections_over_the_limits_are_closed_at_once_and_slots_come_back() -> None:
    rec = Recorder()
    limits = InboundLimits(total=20, per_source=3)
    server = await tcp.listen("::1", 0, rec, rec.accepted, limits=limits)
    port = server.sockets[0].getsockname()[1]
    try:
        held = [await _connect(port) for _ in range(3)]
        await wait_for(lambda: limits.held == 3)
        extra = await _connect(port)
        assert await _closed_by_server(extra, timeout=2)
        assert limits.refused_per_source == 1 and limits.held == 3
        held[0].close()
        await wait_for(lambda: limits.held == 2)
        again = await _connect(port)
        await wait_for(lambda: limits.held == 3)
        await asyncio.get_running_loop().sock_sendall(again, encode_control(Hello(1)))
        await wait_for(lambda: rec.links)
        for sock in (*held[1:], extra, again):
            sock.close()
        await wait_for(lambda: limits.held == 0)
    finally:
        server.close()
