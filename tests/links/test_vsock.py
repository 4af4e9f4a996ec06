"""vsock links: the link and its transport over a socket pair (same code path as a vsock socket),
and real AF_VSOCK over the kernel's loopback transport where it exists."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from link_recorder import Recorder, wait_for
from mycelium.links import vsock
from mycelium.links.endpoint import Endpoint
from mycelium.wire import DataPacket, Hello, Ihu, encode_control, encode_data

VMADDR_CID_LOCAL = 1


class PausingRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.pauses = 0
        self.resumes = 0

    def link_pause_writing(self, link: object) -> None:
        self.pauses += 1

    def link_resume_writing(self, link: object) -> None:
        self.resumes += 1


def _pair(a_rec: Recorder, b_rec: Recorder) -> tuple[vsock.VsockLink, vsock.VsockLink]:
    a_sock, b_sock = socket.socketpair()
    a = vsock.wrap(a_sock, a_rec, inbound=False, local=(3, 1024), remote=(2, 9651))
    b = vsock.wrap(b_sock, b_rec, inbound=True, local=(2, 9651), remote=(3, 1024))
    a.start()
    b.start()
    return a, b


async def _frames_both_ways() -> None:
    a_rec, b_rec = Recorder(), Recorder()
    a, b = _pair(a_rec, b_rec)
    assert a.remote == "vsock://2:9651" and b.remote == "vsock://3:1024"
    assert a.connection_id == "VSOCK 3:1024 <-> 2:9651"
    assert a.static_cost == b.static_cost == 5
    data = encode_data(bytes(16), bytes(range(16)), 64, b"x" * 1400)
    a.send(encode_control(Hello(7)))
    a.send_data_batch([data, data])
    b.send(encode_control(Ihu(96, 400)))
    await wait_for(lambda: len(b_rec.packets) == 3 and len(a_rec.packets) == 1)
    assert b_rec.packets[0] == Hello(7)
    assert all(isinstance(p, DataPacket) for p in b_rec.packets[1:])
    assert a_rec.packets == [Ihu(96, 400)]
    assert a.tx_bytes == b.rx_bytes and a.tx_bytes > 2800
    assert b.tx_bytes == a.rx_bytes > 0
    a.close()
    await wait_for(lambda: bool(b_rec.closed) and bool(a_rec.closed))
    assert b_rec.closed == ["connection closed"]
    assert len(a_rec.closed) == 1


async def test_frames_both_ways_counters_and_close() -> None:
    await _frames_both_ways()


def test_same_on_uvloop() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_frames_both_ways())


async def test_framing_violation_closes_only_that_link() -> None:
    a_rec, b_rec = Recorder(), Recorder()
    a, _b = _pair(a_rec, b_rec)
    a._transport.write(b"\x09\x00\x00\x00garbage")  # type: ignore[union-attr]
    await wait_for(lambda: bool(b_rec.closed) and bool(a_rec.closed))
    assert b_rec.closed[0].startswith("framing error")
    assert b_rec.packets == []


async def test_a_stalled_reader_pauses_the_writer_then_resumes() -> None:
    """A writer that goes on after the pause loses only what exceeds the bounded backlog."""
    a_rec, b_rec = PausingRecorder(), Recorder()
    a, b = _pair(a_rec, b_rec)
    loop = asyncio.get_running_loop()
    fd = b._transport._fd  # type: ignore[union-attr]
    loop.remove_reader(fd)  # the far side stops reading
    frame = encode_data(bytes(16), bytes(range(16)), 64, b"y" * 1400)
    for _ in range(6000):  # ~8.6 MB: above the 4 MiB high-water mark plus the 1 MiB backlog
        a.send_data(frame)
    assert a_rec.pauses == 1 and a_rec.resumes == 0
    assert a.backlog.data_bytes <= a.backlog.data_limit and a.backlog.dropped_data > 0
    sent = 6000 - a.backlog.dropped_data
    loop.add_reader(fd, b._transport._on_readable)  # type: ignore[union-attr]
    await wait_for(lambda: len(b_rec.packets) == sent, timeout=30)
    assert a_rec.resumes == 1 and not a.backlog
    a.close()
    await wait_for(lambda: bool(b_rec.closed))


async def test_close_waits_for_queued_bytes() -> None:
    a_rec, b_rec = Recorder(), Recorder()
    a, b = _pair(a_rec, b_rec)
    loop = asyncio.get_running_loop()
    fd = b._transport._fd  # type: ignore[union-attr]
    loop.remove_reader(fd)
    frame = encode_data(bytes(16), bytes(range(16)), 64, b"z" * 1400)
    for _ in range(1000):
        a.send_data(frame)
    a.close()
    loop.add_reader(fd, b._transport._on_readable)  # type: ignore[union-attr]
    await wait_for(lambda: bool(b_rec.closed))
    assert len(b_rec.packets) == 1000
    assert b_rec.closed == ["connection closed"]


async def test_dialling_without_a_listener_fails() -> None:
    if not vsock.available():
        pytest.skip("AF_VSOCK is not available in this kernel")
    with pytest.raises(OSError):
        await vsock.dial(Endpoint("vsock", str(VMADDR_CID_LOCAL), 1), Recorder())


def _loopback_reason() -> str | None:
    """Why real vsock loopback cannot be tested here, or None when it can."""
    if not vsock.available():
        return "AF_VSOCK is not available in this kernel"
    probe = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        probe.bind((VMADDR_CID_LOCAL, socket.VMADDR_PORT_ANY))
    except OSError as exc:
        return f"no vsock loopback transport (VMADDR_CID_LOCAL): {exc}"
    finally:
        probe.close()
    return None


async def test_real_vsock_loopback() -> None:
    reason = _loopback_reason()
    if reason is not None:
        print(f"skipping: {reason}")
        pytest.skip(reason)
    server_rec = Recorder()
    listener = await vsock.listen(0, server_rec, server_rec.accepted, cid=VMADDR_CID_LOCAL)
    try:
        client_rec = Recorder()
        link = await vsock.dial(Endpoint("vsock", str(VMADDR_CID_LOCAL), listener.port), client_rec)
        link.start()
        assert link.remote == f"vsock://{VMADDR_CID_LOCAL}:{listener.port}"
        link.send(encode_control(Hello(3)))
        await wait_for(lambda: server_rec.packets == [Hello(3)])
        (inbound,) = server_rec.links
        assert inbound.remote.startswith(f"vsock://{VMADDR_CID_LOCAL}:")
        inbound.send(encode_control(Hello(4)))
        await wait_for(lambda: client_rec.packets == [Hello(4)])
        link.close()
        await wait_for(lambda: bool(server_rec.closed))
    finally:
        listener.close()


async def test_node_listens_on_vsock_and_survives_an_unreachable_vsock_peer() -> None:
    from mycelium.node import Node, NodeConfig

    config = NodeConfig.loopback([Endpoint("vsock", "1", 4321)])
    config.vsock_listen_port = socket.VMADDR_PORT_ANY if vsock.available() else 4242
    async with Node(config) as node:
        assert "vsock" in node.peer_manager._dialers  # type: ignore[attr-defined]
        if vsock.available():
            assert node._vsock is not None and node._vsock.port > 0
        else:
            assert node._vsock is None  # logged, not fatal
        (peer,) = node.peer_manager.peers()
        await wait_for(lambda: peer.failures >= 1)  # the dial fails in the background
        assert not node.links and peer.link is None
