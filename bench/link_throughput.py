"""Link-layer throughput over loopback in one process: a TCP, TLS-PSK, QUIC and vsock-transport
link pair (the vsock link on a Unix socket pair, the same code as on AF_VSOCK), one side sending
data frames as fast as backpressure allows, the other decoding them. No router, no TUN, no
crypto of the overlay: what each transport costs. Both ends share one core-bound event loop,
so these are lower bounds on what two processes would do. Median of several runs.

    python bench/link_throughput.py [--runs 5] [--megabytes 64] [--body 1300] [--transports ...]

``--body 1300`` fits a QUIC DATAGRAM; ``--body 1428`` (a full 1400-byte TUN packet, sealed)
does not, and QUIC carries it on the control stream instead.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

import uvloop

from mycelium.links import quic, tcp, tls_psk, vsock
from mycelium.links.base import Link
from mycelium.links.endpoint import Endpoint
from mycelium.wire.packet import encode_control, encode_data
from mycelium.wire.stream import Packet
from mycelium.wire.tlv import Hello
from runner import argument_parser, median, report

NAME, KEY = b"bench", bytes(range(32))
BATCH = 64


class Side:
    """A LinkHandler that counts what arrives and tracks pause/resume for the sender."""

    def __init__(self) -> None:
        self.received = 0
        self.links: list[Link] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = False

    def link_packets(self, link: Link, packets: list[Packet]) -> None:
        self.received += len(packets)

    def link_closed(self, link: Link, reason: str) -> None:
        self.closed = True
        self.writable.set()

    def link_pause_writing(self, link: Link) -> None:
        self.writable.clear()

    def link_resume_writing(self, link: Link) -> None:
        self.writable.set()

    def accepted(self, link: Link) -> None:
        self.links.append(link)
        link.start()


async def _wait(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


async def pair(kind: str, sender: Side, receiver: Side):  # type: ignore[no-untyped-def]
    """(sending link, receiving link, cleanup)."""
    if kind == "vsock":
        a_sock, b_sock = socket.socketpair()
        a = vsock.wrap(a_sock, sender, inbound=False, local=(3, 1), remote=(2, 2))
        b = vsock.wrap(b_sock, receiver, inbound=True, local=(2, 2), remote=(3, 1))
        a.start()
        b.start()
        return a, b, lambda: (a.close(), b.close())
    if kind == "tcp":
        server = await tcp.listen("::1", 0, receiver, receiver.accepted)
        port = server.sockets[0].getsockname()[1]
        link = await tcp.dial(Endpoint("tcp", "::1", port), sender)
    elif kind == "tls":
        server = await tls_psk.listen(
            "::1", 0, receiver, receiver.accepted, network_name=NAME, key=KEY
        )
        link = await tls_psk.dial(
            Endpoint("tcp", "::1", server.port), sender, network_name=NAME, key=KEY
        )
    elif kind == "quic":
        server = await quic.listen("::1", 0, receiver, receiver.accepted, "receiver")
        client = await quic.listen("::1", 0, sender, sender.accepted, "sender")
        link = await client.dial(Endpoint("quic", "::1", server.port), sender)
    else:
        raise ValueError(kind)
    link.start()
    # Listeners admit a link once its first packet decodes (links/admission.py).
    link.send(encode_control(Hello(1)))
    await _wait(lambda: receiver.links and receiver.received)
    receiver.received = 0

    def cleanup() -> None:
        link.close()
        if kind == "quic":
            client.close()
        server.close()

    return link, receiver.links[0], cleanup


async def one_run(kind: str, frames: int, body: bytes) -> dict[str, float]:
    sender, receiver = Side(), Side()
    link, _inbound, cleanup = await pair(kind, sender, receiver)
    frame = encode_data(bytes(16), bytes(range(16)), 64, body)
    batch = [frame] * BATCH
    try:
        start = time.perf_counter()
        sent = 0
        while sent < frames and not sender.closed:
            await sender.writable.wait()
            link.send_data_batch(batch)
            sent += BATCH
            await asyncio.sleep(0)  # let the loop move bytes
        # Wait until everything arrived, or nothing has arrived for half a second (QUIC may
        # lose datagrams under overload: they are not retransmitted).
        last, idle_since = -1, time.perf_counter()
        while receiver.received < sent:
            await asyncio.sleep(0.005)
            if receiver.received != last:
                last, idle_since = receiver.received, time.perf_counter()
            elif time.perf_counter() - idle_since > 0.5:
                break
        elapsed = time.perf_counter() - start
        if receiver.received < sent:
            elapsed -= 0.5  # the idle wait is not transfer time
    finally:
        cleanup()
    return {
        "mb_s": receiver.received * len(frame) / elapsed / 1e6,
        "delivered": receiver.received / sent,
    }


async def measure(kind: str, runs: int, megabytes: float, body_size: int) -> dict[str, object]:
    body = os.urandom(body_size)
    frames = int(megabytes * 1e6 / (body_size + 40)) // BATCH * BATCH
    results = [await one_run(kind, frames, body) for _ in range(runs)]
    rates = [r["mb_s"] for r in results]
    return {
        "transport": kind,
        "frame_bytes": body_size + 40,
        "frames_per_run": frames,
        "mb_s_runs": [round(r, 1) for r in rates],
        "mb_s_median": round(median(rates), 1),
        "delivered_min": round(min(r["delivered"] for r in results), 4),
    }


def main() -> None:
    parser = argument_parser(__doc__, "link_throughput")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--megabytes", type=float, default=64)
    parser.add_argument("--body", type=int, default=1300, help="data packet body bytes")
    parser.add_argument("--transports", nargs="+", default=["tcp", "tls", "quic", "vsock"])
    args = parser.parse_args()

    async def run_all() -> list[dict[str, object]]:
        return [
            await measure(kind, args.runs, args.megabytes, args.body) for kind in args.transports
        ]

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(run_all())
    for r in results:
        print(
            f"{r['transport']:>5}: {r['mb_s_median']:8.1f} MB/s median of {r['mb_s_runs']} "
            f"({r['frame_bytes']}-byte frames, delivered >= {r['delivered_min']:.2%})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report({"body": args.body, "results": results}, args.out)


if __name__ == "__main__":
    main()
