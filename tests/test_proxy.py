"""SOCKS5 proxy discovery and forwarding (extras.md §1) against fake servers on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from mycelium.proxy import (
    GREETING,
    ProbeStatus,
    Proxy,
    ProxyError,
    classify,
    parse_socket_address,
    socket_text,
)


def test_classify_and_socket_addresses() -> None:
    assert classify(b"\x05\x00") is ProbeStatus.VALID
    assert classify(b"\x05\xff") is ProbeStatus.AUTHENTICATION_REQUIRED
    assert classify(b"\x05\x02") is ProbeStatus.NOT_A_PROXY
    assert classify(GREETING[:2]) is ProbeStatus.NOT_A_PROXY
    assert parse_socket_address("[407::1]:1080") == ("407::1", 1080)
    assert parse_socket_address("10.0.0.1:80") == ("10.0.0.1", 80)
    for bad in ("407::1", "[407::1]:70000", "host:80", "1.2.3.4", "[1.2.3.4]:5", "::1:5"):
        with pytest.raises(ValueError):
            parse_socket_address(bad)
    assert socket_text("407::1", 1080) == "[407::1]:1080"
    assert socket_text("10.0.0.1", 80) == "10.0.0.1:80"


class FakeServer:
    """``reply`` answers the greeting; after a valid reply every byte is echoed upper-cased."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._client, host, port)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            greeting = await reader.readexactly(3)
            writer.write(self.reply if self.reply is not None else greeting)  # None: echo
            await writer.drain()
            while data := await reader.read(4096):
                writer.write(data.upper())
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    """Servers on one port at 127.0.0.1 (no auth), .2 (auth only), .3 (echo); .4 is closed."""
    kinds = {"127.0.0.1": b"\x05\x00", "127.0.0.2": b"\x05\xff", "127.0.0.3": None}
    made: dict[str, FakeServer] = {}
    port = 0
    for host, reply in kinds.items():
        made[host] = FakeServer(reply)
        port = await made[host].start(host, port)
    yield port
    for server in made.values():
        server.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


async def test_probing_lists_only_open_proxies(
    port: int,
) -> None:
    targets = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    proxy = Proxy(lambda: targets, listen=("::1", 0), remote_port=port)
    assert proxy.valid() == []  # probing is off at start
    await proxy.probe_round()
    assert proxy.statuses == {
        "127.0.0.1": ProbeStatus.VALID,
        "127.0.0.2": ProbeStatus.AUTHENTICATION_REQUIRED,
        "127.0.0.3": ProbeStatus.NOT_A_PROXY,
        "127.0.0.4": ProbeStatus.NOT_LISTENING,
    }
    assert proxy.valid() == ["127.0.0.1"]


async def test_probing_starts_once_and_survives_stop_start() -> None:
    rounds = 0

    def targets() -> list[str]:
        nonlocal rounds
        rounds += 1
        return []

    proxy = Proxy(targets)
    proxy.start_probing()
    proxy.start_probing()  # not a second loop
    await asyncio.sleep(0.05)
    assert rounds == 1 and proxy.probing
    proxy.stop_probing()
    assert not proxy.probing
    proxy.start_probing()
    await asyncio.sleep(0.05)
    assert rounds == 2
    await proxy.close()


async def test_connect_forwards_to_a_discovered_proxy_and_disconnect_ends_streams(
    port: int,
) -> None:
    listen_port = free_port()
    proxy = Proxy(lambda: ["127.0.0.2", "127.0.0.1"], listen=("::1", listen_port), remote_port=port)
    await proxy.probe_round()
    assert await proxy.connect(None) == f"127.0.0.1:{port}"
    reader, writer = await asyncio.open_connection("::1", listen_port)
    writer.write(GREETING)  # the remote server answers the client's handshake
    assert await reader.readexactly(2) == b"\x05\x00"
    writer.write(b"through the proxy")
    assert await reader.readexactly(17) == b"THROUGH THE PROXY"
    await proxy.disconnect()
    assert await reader.read() == b""  # the stream was cut
    assert proxy.target is None
    with pytest.raises(OSError):
        await asyncio.open_connection("::1", listen_port)
    writer.close()
    await proxy.close()


async def test_connect_failures(port: int) -> None:
    proxy = Proxy(lambda: ["127.0.0.2"], listen=("::1", 0), remote_port=port)
    await proxy.probe_round()
    with pytest.raises(ProxyError, match="no valid proxy"):
        await proxy.connect(None)  # nothing valid
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        busy = Proxy(lambda: [], listen=("::1", taken.getsockname()[1]))
        with pytest.raises(ProxyError, match="cannot listen"):
            await busy.connect("[407::1]:1080")
    # A given remote is accepted without probing; reconnecting replaces the session at once.
    reuse = Proxy(lambda: [], listen=("::1", free_port()))
    assert await reuse.connect("[407::1]:9999") == "[407::1]:9999"
    assert await reuse.connect("10.0.0.1:1080") == "10.0.0.1:1080"
    await reuse.close()
    await proxy.close()
