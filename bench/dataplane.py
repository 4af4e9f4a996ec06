"""Data-plane throughput: packets/s through from_tun (seal + frame), from_link (open + deliver)
and from_link at a transit node (forward).

    PYTHONPATH=src python bench/dataplane.py [--packets N] [--runs 5] [--profile]

1400-byte IPv6 packets, batches of 64 (the TUN read batch). Prints the median of the runs and
writes bench/results/dataplane.json. Target: the node needs ~134k packets/s at MTU 1400 for
1.5 Gbit/s on 2 cores, so a direction must stay well under 7 µs per packet here.
"""

from __future__ import annotations

import cProfile
import hashlib
import pstats
import struct
import time

from mycelium.crypto import KeyCache
from mycelium.dataplane import DataPlane
from mycelium.identity import Identity
from mycelium.routing import Forward, Local, Queue
from mycelium.subnet import Subnet
from mycelium.wire.packet import DataPacket
from runner import argument_parser, median, report

BATCH = 64
SIZE = 1400


class StaticRouter:
    """One selected route per /64: the cheapest router the contract allows."""

    version = 0  # its routes never change

    def __init__(self, own: Identity, peer: Identity) -> None:
        self.versioned = self
        self.own = own.address[:8]
        self.peer = peer.address[:8]
        self.decision = Forward("peer", peer.public_key)
        self.peer_key = peer.public_key

    def route(self, dst: bytes, now: float, origin: bool = False) -> object:
        prefix = dst[:8]
        if prefix == self.peer:
            return self.decision
        if prefix == self.own:
            return Local()
        return Queue(Subnet.of(dst, 64))

    def public_key_for(self, address: bytes) -> bytes | None:
        return self.peer_key if address[:8] == self.peer else None

    def request_route(self, address: bytes, now: float) -> None:
        pass


def identity(label: str) -> Identity:
    return Identity.from_secret(hashlib.sha256(label.encode()).digest())


def make_packets(a: Identity, b: Identity, n: int) -> list[bytes]:
    payload = bytes(SIZE - 40)
    header = struct.pack("!IHBB", 0x60000000, len(payload), 17, 64)
    return [header + a.address + b.address + payload for _ in range(n)]


def link_frames(plane: DataPlane) -> list[bytes]:
    """Every frame the plane queued for its links, in order (the runtime sends them per link)."""
    return [frame for _, frames in plane.take_link_batches() for frame in frames]


def sealed_batches(a: Identity, b: Identity, n: int) -> list[list[DataPacket]]:
    """``n`` packets from ``a`` to ``b``, sealed by a's data plane and parsed as b's links hand
    them over, in batches of ``BATCH``."""
    sender = DataPlane(a, StaticRouter(a, b), KeyCache(a.secret))
    packets = make_packets(a, b, n)
    frames: list[bytes] = []
    for i in range(0, n, BATCH):
        sender.from_tun(packets[i : i + BATCH], 0.0)
        frames.extend(link_frames(sender))
    data = [DataPacket(f[8:24], f[24:40], f[7], f[40:]) for f in frames]
    return [data[i : i + BATCH] for i in range(0, len(data), BATCH)]


def run_once(n: int) -> dict[str, float]:
    a, b = identity("bench a"), identity("bench b")
    pa = DataPlane(a, StaticRouter(a, b), KeyCache(a.secret))
    pb = DataPlane(b, StaticRouter(b, a), KeyCache(b.secret))
    packets = make_packets(a, b, n)
    batches = [packets[i : i + BATCH] for i in range(0, n, BATCH)]

    frames: list[bytes] = []
    t0 = time.perf_counter()
    for batch in batches:
        pa.from_tun(batch, 0.0)
        frames.extend(link_frames(pa))
    t_tun = time.perf_counter() - t0
    assert len(frames) == n

    data = [DataPacket(f[8:24], f[24:40], f[7], f[40:]) for f in frames]
    link_batches = [data[i : i + BATCH] for i in range(0, n, BATCH)]
    delivered = 0
    t0 = time.perf_counter()
    for batch in link_batches:
        pb.from_link(batch, 0.0)
        delivered += len(pb.take_to_tun())
    t_link = time.perf_counter() - t0
    assert delivered == n

    # transit: a third node between them forwards without decrypting
    c = identity("bench c")
    pc = DataPlane(c, StaticRouter(c, b), KeyCache(c.secret))
    forwarded = 0
    t0 = time.perf_counter()
    for batch in link_batches:
        pc.from_link(batch, 0.0)
        forwarded += len(link_frames(pc))
    t_fwd = time.perf_counter() - t0
    assert forwarded == n

    return {"from_tun_pps": n / t_tun, "from_link_pps": n / t_link, "forward_pps": n / t_fwd}


def main() -> None:
    parser = argument_parser(__doc__, "dataplane")
    parser.add_argument("--packets", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    if args.profile:
        cProfile.runctx("run_once(args.packets)", globals(), {"args": args}, "/tmp/dp.prof")
        pstats.Stats("/tmp/dp.prof").sort_stats("tottime").print_stats(12)

    runs = [run_once(args.packets) for _ in range(args.runs)]
    result: dict[str, object] = {"packets": args.packets, "packet_size": SIZE, "batch": BATCH}
    for key in ("from_tun_pps", "from_link_pps", "forward_pps"):
        middle = median(r[key] for r in runs)
        result[key] = round(middle)
        result[key.replace("_pps", "_us_per_packet")] = round(1e6 / middle, 3)
        result[key.replace("_pps", "_gbit_s")] = round(middle * SIZE * 8 / 1e9, 3)
        result[key + "_runs"] = [round(r[key]) for r in runs]
    report(result, args.out, show=True)


if __name__ == "__main__":
    main()
