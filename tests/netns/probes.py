"""What the ICMPv6 prober (icmp_prober.py) logged, and what it means: when every pair was first
answered, when each pair was answered continuously again after an event, what was lost, and
whether anything looped. Times are wall-clock seconds (time.time()).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: Seconds between two probes of one pair.
PROBE_INTERVAL = 0.1
#: Consecutive unanswered probes that make an outage (0.3 s at the probe interval).
OUTAGE = 3
#: Probes younger than this are not judged yet (their reply may still be on its way).
PENDING = 1.0
#: Hop limit of an echo request as it leaves the source; a reply arrives with 64 - (links + 1).
HOP_LIMIT = 64


@dataclass
class PairLog:
    sent: list[float] = field(default_factory=list)  # send time by sequence number
    replies: dict[int, tuple[float, int]] = field(default_factory=dict)  # seq: (time, hop limit)
    #: Requests that reached the destination (the forward direction alone), as ``replies``.
    arrivals: dict[int, tuple[float, int]] = field(default_factory=dict)
    first_reply: float | None = None


class Probes:
    """What the prober logged so far; ``read()`` takes in the lines written since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pairs: dict[tuple[int, int], PairLog] = {}
        #: (time, src, dst, seq, type, code) of each ICMPv6 error quoting a probe.
        self.errors: list[tuple[float, int, int, int, int, int]] = []
        self._offset = 0

    def read(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        for line in chunk[:end].decode().splitlines():
            kind, t, src, dst, seq, *rest = line.split()
            log = self.pairs.setdefault((int(src), int(dst)), PairLog())
            when, number = float(t), int(seq)
            if kind in ("s", "f"):
                log.sent.append(when)
            elif kind == "q":
                log.arrivals[number] = (when, int(rest[0]))
            elif kind == "r":
                log.replies[number] = (when, int(rest[0]))
                if log.first_reply is None:
                    log.first_reply = when
            elif kind == "x":
                self.errors.append((when, int(src), int(dst), number, int(rest[0]), int(rest[1])))

    def all_answered(self, pairs: Iterable[tuple[int, int]]) -> float | None:
        """When the last of ``pairs`` got its first reply; None while one has none."""
        latest = 0.0
        for pair in pairs:
            log = self.pairs.get(pair)
            if log is None or log.first_reply is None:
                return None
            latest = max(latest, log.first_reply)
        return latest

    def healed(
        self, pair: tuple[int, int], since: float, now: float, one_way: bool = False
    ) -> float | None:
        """When ``pair`` was last answered again after an outage that happened after ``since``
        (``since`` itself if there was none); None while it is out. ``one_way``: judge the
        requests reaching the destination instead of the replies coming back."""
        log = self.pairs.get(pair)
        if log is None:
            return None
        got = log.arrivals if one_way else log.replies
        lost, out, healed = 0, False, since
        for seq in range(bisect.bisect_left(log.sent, since), len(log.sent)):
            if log.sent[seq] > now - PENDING:
                break
            reply = got.get(seq)
            if reply is None:
                lost += 1
                out = out or lost >= OUTAGE
            else:
                if out:
                    healed, out = reply[0], False
                lost = 0
        return None if out else healed

    def all_healed(
        self, pairs: Iterable[tuple[int, int]], since: float, now: float
    ) -> float | None:
        latest = since
        for pair in pairs:
            healed = self.healed(pair, since, now)
            if healed is None:
                return None
            latest = max(latest, healed)
        return latest

    def slowest(
        self, pairs: Iterable[tuple[int, int]], since: float, now: float, count: int = 5
    ) -> list[dict[str, object]]:
        """The pairs that healed last, with each direction's own time (None: still out)."""

        def seconds(t: float | None) -> float | None:
            return None if t is None else round(t - since, 2)

        times = [(pair, self.healed(pair, since, now)) for pair in pairs]
        times.sort(key=lambda item: float("inf") if item[1] is None else item[1], reverse=True)
        return [
            {
                "pair": list(pair),
                "round_trip_s": seconds(t),
                "there_s": seconds(self.healed(pair, since, now, one_way=True)),
                "back_s": seconds(self.healed(pair[::-1], since, now, one_way=True)),
            }
            for pair, t in times[:count]
        ]

    def lost(self, pairs: Iterable[tuple[int, int]], since: float, until: float) -> int:
        """Probes sent in [since, until - PENDING] that were never answered."""
        count = 0
        for pair in pairs:
            log = self.pairs.get(pair)
            if log is None:
                continue
            first = bisect.bisect_left(log.sent, since)
            last = bisect.bisect_right(log.sent, until - PENDING)
            count += sum(1 for seq in range(first, last) if seq not in log.replies)
        return count

    def time_exceeded(self, since: float, until: float) -> int:
        return sum(1 for e in self.errors if since <= e[0] < until and e[4] == 3)

    def unreachable(self, since: float, until: float) -> int:
        return sum(1 for e in self.errors if since <= e[0] < until and e[4] == 1)

    def longest_path(self, since: float, until: float) -> int:
        """Most overlay links an echo request or reply crossed in the window (0 if none
        arrived): longer than the network has nodes only through a loop."""
        longest = 0
        for log in self.pairs.values():
            for got in (log.replies, log.arrivals):
                for when, hop in got.values():
                    if since <= when < until and hop > 0:
                        longest = max(longest, HOP_LIMIT - 1 - hop)
        return longest
