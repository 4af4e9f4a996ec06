"""Feasibility distances per (subnet, router ID) and the feasibility condition (routing.md §4.3).

Entries are written only when this node sends an Update; they are garbage-collected 30 minutes
after their last refresh. Expiry is checked on access, so the answer is exact without a timer per
entry; ``sweep`` only returns memory.
"""

from __future__ import annotations

from ..identity import RouterId
from ..subnet import Subnet
from ..wire.tlv import INFINITY
from .arithmetic import seqno_gt
from .constants import SOURCE_HOLD_DURATION

SourceKey = tuple[Subnet, RouterId]


class SourceTable:
    __slots__ = ("_fd", "expired")

    def __init__(self) -> None:
        # key -> (metric, seqno, gc deadline)
        self._fd: dict[SourceKey, tuple[int, int, float]] = {}
        #: Entries dropped after their hold time (the metric ``source_key_expired``).
        self.expired = 0

    def get(self, key: SourceKey, now: float) -> tuple[int, int] | None:
        """(metric, seqno) of the feasibility distance, or None."""
        fd = self._fd.get(key)
        if fd is None:
            return None
        if fd[2] <= now:
            del self._fd[key]
            self.expired += 1
            return None
        return fd[0], fd[1]

    def feasible(self, key: SourceKey, seqno: int, metric: int, now: float) -> bool:
        if metric == INFINITY:
            return True
        fd = self._fd.get(key)
        if fd is None:
            return True
        if fd[2] <= now:
            del self._fd[key]
            self.expired += 1
            return True
        fd_seqno = fd[1]
        return seqno_gt(seqno, fd_seqno) or (seqno == fd_seqno and metric < fd[0])

    def note_sent(self, key: SourceKey, seqno: int, metric: int, now: float) -> None:
        """An Update for ``key`` is being sent: lower the feasibility distance or refresh it."""
        fd = self._fd.get(key)
        if fd is not None and fd[2] <= now:
            self.expired += 1
            fd = None
        if fd is None or seqno_gt(seqno, fd[1]) or (seqno == fd[1] and metric < fd[0]):
            self._fd[key] = (metric, seqno, now + SOURCE_HOLD_DURATION)
        elif metric != INFINITY:
            self._fd[key] = (fd[0], fd[1], now + SOURCE_HOLD_DURATION)

    def sweep(self, now: float) -> None:
        dead = [k for k, fd in self._fd.items() if fd[2] <= now]
        for k in dead:
            del self._fd[k]
        self.expired += len(dead)

    def __len__(self) -> int:
        return len(self._fd)
