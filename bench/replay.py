"""Cost of replay protection (dataplane/replay.py) on the receive path, and its memory bound.

    PYTHONPATH=src python bench/replay.py [--packets N] [--runs 7]

1. ``ReplayWindow.seen`` alone: ns per call, fresh nonces from one source (rotations included).
2. ``DataPlane.from_link`` delivering 1400-byte packets in batches of 64, with the window and with
   it switched off, interleaved run by run; the difference is the per-packet cost. Switching it
   off swaps in duck-typed stand-ins, which only the pure-Python data plane takes: with the
   compiled one (setup.py) this part is skipped; measure it in a ``MYCELIUM_PURE=1`` install or
   the editable one.
3. Memory when every source slot and both generations are full (the worst case a crowd of
   authenticated senders can force), by tracemalloc.

Prints the medians and writes bench/results/replay.json.
"""

from __future__ import annotations

import math
import os
import statistics
import time
import tracemalloc

from dataplane import SIZE, StaticRouter, identity, sealed_batches
from mycelium.crypto import KeyCache
from mycelium.dataplane import DataPlane, plane, replay
from mycelium.dataplane.replay import ReplayWindow
from mycelium.wire.packet import DataPacket
from runner import argument_parser, report

compiled = not plane.__file__.endswith(".py")


class _Appends(list[bytes]):
    """Remembers nonces without looking at them: ``add`` is a C-level append, so the size grows
    as a set's does for fresh nonces, and the baseline keeps only the data plane's own steps."""

    add = list.append


class _WindowOff:
    __slots__ = ("current", "expires", "previous")

    def __init__(self) -> None:
        self.current = _Appends()
        self.previous: frozenset[bytes] = frozenset()  # membership: the C test of an empty set
        self.expires = math.inf


class WindowOff:
    """Stands in for ``ReplayWindow`` to measure the receive path without it."""

    generation_size = 1 << 62
    replayed = 0

    def __init__(self) -> None:
        self._window = _WindowOff()

    def window(self, src: bytes, now: float) -> _WindowOff:
        return self._window

    def seen(self, src: bytes, body: bytes, now: float) -> bool:
        return False


def seen_ns(n: int) -> float:
    window = ReplayWindow()
    src = identity("replay bench").address
    bodies = [os.urandom(32) for _ in range(n)]
    t0 = time.perf_counter_ns()
    for body in bodies:
        window.seen(src, body, 0.0)
    return (time.perf_counter_ns() - t0) / n


def frames(n: int) -> tuple[list[list[DataPacket]], object, object]:
    a, b = identity("bench a"), identity("bench b")
    return sealed_batches(a, b, n), a, b


def from_link_us(batches: list[list[DataPacket]], a: object, b: object, on: bool) -> float:
    plane = DataPlane(b, StaticRouter(b, a), KeyCache(b.secret))  # type: ignore[arg-type]
    if not on:
        plane.replay = WindowOff()  # type: ignore[assignment]
    n = sum(map(len, batches))
    t0 = time.perf_counter()
    for batch in batches:
        plane.from_link(batch, 0.0)
        plane.take_to_tun()
    elapsed = time.perf_counter() - t0
    assert plane.counters.delivered == n
    return elapsed / n * 1e6


def full_memory() -> tuple[int, int]:
    """Bytes held by a window with every source and generation full, and the nonces held."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    window = ReplayWindow()
    for s in range(replay.MAX_SOURCES):
        src = bytes([0x04, s >> 8, s & 0xFF]) + bytes(13)
        for _ in range(2 * replay.GENERATION_SIZE - 1):  # one more rotates: the most it holds
            window.seen(src, os.urandom(32), 0.0)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held, len(window)


def main() -> None:
    parser = argument_parser(__doc__, "replay")
    parser.add_argument("--packets", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    seen = [seen_ns(args.packets) for _ in range(args.runs)]
    held, nonces = full_memory()
    result: dict[str, object] = {
        "packets": args.packets,
        "packet_size": SIZE,
        "seen_ns_per_call": round(statistics.median(seen)),
        "full_window_nonces": nonces,
        "full_window_bytes": held,
        "full_window_bytes_per_nonce": round(held / nonces, 1),
        "compiled_data_plane": compiled,
    }
    if not compiled:
        batches, a, b = frames(args.packets)
        with_window: list[float] = []
        without: list[float] = []
        for _ in range(args.runs):  # interleaved: both see the same machine load
            without.append(from_link_us(batches, a, b, on=False))
            with_window.append(from_link_us(batches, a, b, on=True))
        off, on = statistics.median(without), statistics.median(with_window)
        result |= {
            "from_link_us_per_packet_without": round(off, 3),
            "from_link_us_per_packet_with": round(on, 3),
            "replay_cost_us_per_packet": round(on - off, 3),
            "replay_cost_percent": round(100 * (on - off) / off, 1),
            "runs_without": [round(x, 3) for x in without],
            "runs_with": [round(x, 3) for x in with_window],
        }
    report(result, args.out, show=True)


if __name__ == "__main__":
    main()
