"""Arming the event loop's timer for the deadline of a sans-I/O component."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: uvloop keeps time in whole milliseconds and runs at once a callback due in less than half of
#: one. A component woken before its deadline finds nothing due and re-arms for the same
#: deadline: a node spun through some 40 empty wake-ups before its router's deadlines. Waiting
#: at least this long wakes it early once at most.
MIN_DELAY = 0.001


def call_at(
    loop: asyncio.AbstractEventLoop, deadline: float, callback: Callable[[], object]
) -> asyncio.TimerHandle:
    """``loop.call_at(deadline, callback)``, except that a deadline less than ``MIN_DELAY`` ahead
    is moved to ``MIN_DELAY`` ahead (one already due still runs at once)."""
    now = loop.time()
    if now < deadline < now + MIN_DELAY:
        deadline = now + MIN_DELAY
    return loop.call_at(deadline, callback)
