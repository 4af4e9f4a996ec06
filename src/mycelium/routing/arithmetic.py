"""Babel's modular seqno comparison, saturating metric arithmetic and hold times (docs/routing.md
§3.4, §4.2, §4.5)."""

from __future__ import annotations

from ..wire.tlv import INFINITY
from .constants import RETRACTED_ROUTE_HOLD_TIME

MAX_FINITE_METRIC = 0xFFFE


def seqno_lt(a: int, b: int) -> bool:
    """``a`` is older than ``b`` (values 32768 apart are neither older nor newer)."""
    return a != b and ((b - a) & 0xFFFF) < 0x8000


def seqno_gt(a: int, b: int) -> bool:
    """``a`` is newer than ``b``."""
    return a != b and ((b - a) & 0xFFFF) > 0x8000


def seqno_next(s: int) -> int:
    return (s + 1) & 0xFFFF


def metric_add(a: int, b: int) -> int:
    """Finite sums saturate below infinity; infinity absorbs everything."""
    if a == INFINITY or b == INFINITY:
        return INFINITY
    s = a + b
    return s if s < MAX_FINITE_METRIC else MAX_FINITE_METRIC


def metric_sub(a: int, b: int) -> int:
    if a == INFINITY:
        return INFINITY
    return a - b if a > b else 0


def hold_time(interval_cs: int, metric: int) -> float:
    """How long an accepted Update keeps its entry: 3.5 intervals, in whole milliseconds."""
    if metric == INFINITY:
        return RETRACTED_ROUTE_HOLD_TIME
    return (interval_cs * 10 * 7 // 2) / 1000.0
