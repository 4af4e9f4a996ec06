"""Feasibility distances per (subnet, router ID), the feasibility condition (docs/routing.md §4.3).

Entries are written only when this node sends an Update; they are garbage-collected 30 minutes
after their last refresh. Expiry is checked on access, so the answer is exact without a timer per
entry; ``sweep`` only returns memory.

The distance for a subnet's owner (nearly every one) is kept in the route table's slot columns,
so it costs a few bytes; any other (our own subnet, a restarted origin's old or new router ID,
subnets without routes) sits in a small dict here. Callers that already hold the subnet's slot
pass it to skip a lookup.
"""

from __future__ import annotations

from ..identity import RouterId
from ..subnet import Subnet
from ..wire.tlv import INFINITY
from .arithmetic import seqno_gt
from .constants import SOURCE_HOLD_DURATION
from .table import NONE, RouteTable

SourceKey = tuple[Subnet, RouterId]


class SourceTable:
    __slots__ = ("_t", "expired", "other")

    def __init__(self, table: RouteTable | None = None) -> None:
        self._t = RouteTable() if table is None else table
        #: key -> (metric, seqno, gc deadline) where the key is not a slot owner's.
        self.other: dict[SourceKey, tuple[int, int, float]] = {}
        #: Entries dropped after their hold time (the metric ``source_key_expired``).
        self.expired = 0

    def _column(self, key: SourceKey, slot: int | None) -> int:
        """The slot whose columns hold ``key``'s distance, or NONE (``other`` holds it)."""
        t = self._t
        s = t.slot(key[0]) if slot is None else slot
        return s if s != NONE and t.owned_by(s, key[1]) else NONE

    def _owned(self, s: int, now: float) -> tuple[int, int] | None:
        """(metric, seqno) held in slot ``s``'s columns unless absent or expired (an expired one
        is dropped and counted)."""
        t = self._t
        until = t.fd_until[s]
        if not until:
            return None
        if until <= now:
            t.fd_until[s] = 0.0
            self.expired += 1
            return None
        return t.fd_metric[s], t.fd_seqno[s]

    def _read(self, key: SourceKey, now: float, column: int) -> tuple[int, int] | None:
        """``_owned`` for any key: from ``column`` or from ``other``."""
        if column != NONE:
            return self._owned(column, now)
        fd = self.other.get(key)
        if fd is None:
            return None
        if fd[2] <= now:
            del self.other[key]
            self.expired += 1
            return None
        return fd[0], fd[1]

    def get(self, key: SourceKey, now: float, slot: int | None = None) -> tuple[int, int] | None:
        """(metric, seqno) of the feasibility distance, or None."""
        return self._read(key, now, self._column(key, slot))

    def feasible(
        self, key: SourceKey, seqno: int, metric: int, now: float, slot: int | None = None
    ) -> bool:
        if metric == INFINITY:
            return True
        return _better(seqno, metric, self._read(key, now, self._column(key, slot)))

    def feasible_owned(self, s: int, seqno: int, metric: int, now: float) -> bool:
        """``feasible`` for the owner's router ID of slot ``s`` (the common case, no key)."""
        return metric == INFINITY or _better(seqno, metric, self._owned(s, now))

    def feasible_entry(self, s: int, e: int, now: float) -> bool:
        """``feasible`` for route entry ``e`` of slot ``s``, under the router ID it carries."""
        t = self._t
        rid = t.e_rid.get(e)
        if rid is None:
            return self.feasible_owned(s, t.e_seqno[e], t.e_metric[e], now)
        return self.feasible((t.subnet(s), rid), t.e_seqno[e], t.e_metric[e], now, s)

    def note_sent(
        self, key: SourceKey, seqno: int, metric: int, now: float, column: int | None = None
    ) -> None:
        """An Update for ``key`` is being sent: lower the feasibility distance or refresh it.

        ``column``: the slot whose owner's ID is ``key``'s (NONE: not a slot owner's), if the
        caller knows."""
        s = self._column(key, None) if column is None else column
        fd = self._read(key, now, s)
        if fd is None or _better(seqno, metric, fd):
            value = (metric, seqno, now + SOURCE_HOLD_DURATION)
        elif metric != INFINITY:
            value = (fd[0], fd[1], now + SOURCE_HOLD_DURATION)
        else:
            return
        if s == NONE:
            self.other[key] = value
        else:
            t = self._t
            t.fd_metric[s], t.fd_seqno[s], t.fd_until[s] = value

    def sweep(self, now: float) -> None:
        """Drop expired distances and free the slots left with nothing."""
        t = self._t
        until = t.fd_until
        for s in list(t.all_slots()):
            if until[s] and until[s] <= now:
                until[s] = 0.0
                self.expired += 1
            t.release(s)
        dead = [k for k, fd in self.other.items() if fd[2] <= now]
        for k in dead:
            del self.other[k]
        self.expired += len(dead)

    def __len__(self) -> int:
        until = self._t.fd_until
        return sum(1 for s in self._t.all_slots() if until[s]) + len(self.other)


def _better(seqno: int, metric: int, fd: tuple[int, int] | None) -> bool:
    """Strictly better than the distance ``fd`` (metric, seqno), or no distance held."""
    return fd is None or seqno_gt(seqno, fd[1]) or (seqno == fd[1] and metric < fd[0])
