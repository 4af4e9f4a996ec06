"""SOCKS5 proxy discovery and forwarding (docs/extras.md §1) against fake servers on loopback."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from mycelium.proxy import (
    GREETING,
    ProbeStatus,
    Proxy,
    ProxyError,
    classify,
    next_tick,
)


def test_classify() -> None:
    assert classify(b"\x05\x00") is ProbeStatus.VALID
    assert classify(b"\x05\xff") is ProbeStatus.AUTHENTICATION_REQUIRED
    assert classify(b"\x05\x02") is ProbeStatus.NOT_A_PROXY
    assert classify(GREETING[:2]) is ProbeStatus.NOT_A_PROXY


def test_probe_ticks_keep_a_fixed_period_and_skip_missed_ones() -> None:
    assert next_tick(100.0, 100.0) == 160.0  # a quick round: the next one a period after
    assert next_tick(100.0, 159.9) == 160.0
    assert next_tick(100.0, 160.0) == 220.0  # a round as long as the period
    assert next_tick(100.0, 290.0) == 340.0  # ticks at 160, 220 and 280 were missed
    assert next_tick(0.0, 5.0, interval=2.0) == 6.0


class FakeServer:
    """``reply`` answers the greeting; after a valid reply every byte is echoed upper-cased."""

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.server: asyncio.Server | None = None
        self.ended = asyncio.Event()  # a client's connection closed, from either end

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
            self.ended.set()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


#: One port on every address: no auth on 127.0.0.1 and ::1, auth only on .2, an echo on .3.
KINDS: dict[str, bytes | None] = {
    "127.0.0.1": b"\x05\x00",
    "::1": b"\x05\x00",
    "127.0.0.2": b"\x05\xff",
    "127.0.0.3": None,
}


@pytest.fixture
async def servers() -> AsyncIterator[tuple[int, dict[str, FakeServer]]]:
    made: dict[str, FakeServer] = {}
    port = 0
    for host, reply in KINDS.items():
        made[host] = FakeServer(reply)
        port = await made[host].start(host, port)
    yield port, made
    for server in made.values():
        server.close()


@pytest.fixture
def port(servers: tuple[int, dict[str, FakeServer]]) -> int:
    return servers[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


async def through(
    listen_port: int, host: str = "::1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client of the forwarding that has done the (remote) SOCKS handshake."""
    reader, writer = await asyncio.open_connection(host, listen_port)
    writer.write(GREETING)
    assert await reader.readexactly(2) == b"\x05\x00"
    return reader, writer


async def test_probing_lists_only_open_proxies(port: int) -> None:
    targets = ["127.0.0.1", "::1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    proxy = Proxy(lambda: targets, listen=("::1", 0), remote_port=port)
    assert proxy.valid() == []  # probing is off at start
    await proxy.probe_round()
    assert proxy.statuses == {
        "127.0.0.1": ProbeStatus.VALID,
        "::1": ProbeStatus.VALID,
        "127.0.0.2": ProbeStatus.AUTHENTICATION_REQUIRED,
        "127.0.0.3": ProbeStatus.NOT_A_PROXY,
        "127.0.0.4": ProbeStatus.NOT_LISTENING,
    }
    assert proxy.valid() == ["127.0.0.1", "::1"]
    targets.clear()  # routes gone: their last statuses stay, as in the reference
    await proxy.probe_round()
    assert proxy.valid() == ["127.0.0.1", "::1"]


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
    await proxy.disconnect()  # forwarding ends, probing goes on
    assert proxy.probing
    await proxy.close()
    assert not proxy.probing


async def test_connect_forwards_to_a_discovered_proxy_and_disconnect_ends_streams(
    port: int,
) -> None:
    listen_port = free_port()
    proxy = Proxy(lambda: ["127.0.0.2", "127.0.0.1"], listen=("::1", listen_port), remote_port=port)
    await proxy.probe_round()
    assert await proxy.connect(None) == f"127.0.0.1:{port}"
    assert proxy.target == f"127.0.0.1:{port}"
    reader, writer = await through(listen_port)  # the remote server answers the handshake
    writer.write(b"through the proxy")
    assert await reader.readexactly(17) == b"THROUGH THE PROXY"
    await proxy.disconnect()
    assert await reader.read() == b""  # the stream was cut
    assert proxy.target is None
    with pytest.raises(OSError):
        await asyncio.open_connection("::1", listen_port)
    writer.close()
    await proxy.close()


async def test_a_given_ipv6_remote_and_a_dual_stack_listener(port: int) -> None:
    """``::`` also takes IPv4 clients, as tokio's bind leaves it (asyncio's would not)."""
    listen_port = free_port()
    proxy = Proxy(lambda: [], listen=("::", listen_port))
    assert await proxy.connect(f"[::1]:{port}") == f"[::1]:{port}"
    for client in ("127.0.0.1", "::1"):
        reader, writer = await through(listen_port, client)
        writer.write(b"v4 and v6")
        assert await reader.readexactly(9) == b"V4 AND V6"
        writer.close()
    await proxy.close()


async def test_half_close_is_passed_on_and_a_reset_client_ends_the_remote_stream(
    servers: tuple[int, dict[str, FakeServer]],
) -> None:
    port, made = servers
    listen_port = free_port()
    proxy = Proxy(lambda: [], listen=("::1", listen_port))
    await proxy.connect(f"127.0.0.1:{port}")
    reader, writer = await through(listen_port)
    writer.write(b"last words")
    writer.write_eof()  # the answer still comes back on the open half
    assert await reader.read() == b"LAST WORDS"
    writer.close()
    await asyncio.wait_for(made["127.0.0.1"].ended.wait(), 5)

    made["127.0.0.1"].ended.clear()
    reader, writer = await through(listen_port)
    raw = writer.get_extra_info("socket")
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # an RST: the spliced remote connection must not linger
    await asyncio.wait_for(made["127.0.0.1"].ended.wait(), 5)
    await proxy.close()


async def test_connect_failures(port: int) -> None:
    proxy = Proxy(lambda: ["127.0.0.2"], listen=("::1", 0), remote_port=port)
    await proxy.probe_round()
    with pytest.raises(ProxyError, match="no valid proxy"):
        await proxy.connect(None)  # nothing valid
    proxy.statuses["127.0.0.4"] = ProbeStatus.VALID  # listed once, gone since
    with pytest.raises(ProxyError, match="no valid proxy"):
        await proxy.connect(None)
    with pytest.raises(ProxyError):
        await proxy.connect("not an address")
    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::1", 0))
        taken.listen()
        busy = Proxy(lambda: [], listen=("::1", taken.getsockname()[1]))
        with pytest.raises(ProxyError, match="cannot listen"):
            await busy.connect("[407::1]:1080")
        assert busy.target is None
    await proxy.close()


async def test_reconnects_take_turns_on_one_port(port: int) -> None:
    """A given remote is taken without probing; a new connect replaces the session at once,
    closing the old listener and its streams first, even when two calls overlap."""
    listen_port = free_port()
    proxy = Proxy(lambda: [], listen=("::1", listen_port))
    assert await proxy.connect(f"127.0.0.1:{port}") == f"127.0.0.1:{port}"
    reader, writer = await through(listen_port)
    both = await asyncio.gather(proxy.connect("[407::1]:9999"), proxy.connect("10.0.0.1:1080"))
    assert both == ["[407::1]:9999", "10.0.0.1:1080"]
    assert proxy.target == "10.0.0.1:1080"
    assert await reader.read() == b""  # the first session's stream went with it
    writer.close()
    await proxy.close()
