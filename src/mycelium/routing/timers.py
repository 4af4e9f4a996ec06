"""The router's timers (docs/routing.md §2): periodic deadlines, route expiry in a wheel of whole
seconds, and queried-subnet markers in a heap.

Both the wheel and the heap delete lazily: a refresh files an entry again and the superseded
filing is skipped when its second comes. Expiry therefore runs up to one second late, invisible
next to route hold times of minutes.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Iterator

from ..subnet import Subnet


def advance(deadline: float, period: float, now: float) -> float:
    """The next deadline of a periodic timer that fired (late firings do not pile up)."""
    deadline += period
    return deadline if deadline > now else now + period


class ExpiryWheel:
    """Entry numbers filed under the whole second they expire in (4 bytes per filing)."""

    __slots__ = ("_items", "_limit", "_seconds", "_wheel")

    def __init__(self) -> None:
        self._wheel: dict[int, array[int]] = {}
        self._seconds: list[int] = []
        self._items = 0
        self._limit = 4096

    def file(self, e: int, expires: float, expiries: array[float]) -> None:
        """File entry ``e`` (expiring at ``expires``); ``expiries`` is every entry's expiry,
        read when the wheel compacts itself."""
        second = math.ceil(expires)
        if _file(self._wheel, second, e):
            heapq.heappush(self._seconds, second)
        self._items += 1
        if self._items > self._limit:
            self._compact(expiries)

    def due(self, now: float, expiries: array[float]) -> Iterator[int]:
        """Entries whose filed second has come and whose expiry still falls in it."""
        # Re-read the attributes every time: handling an expiry files entries again, which may
        # compact the wheel into new containers.
        while self._seconds and self._seconds[0] <= now:
            second = heapq.heappop(self._seconds)
            filed = self._wheel.pop(second, None)
            if filed is None:
                continue
            self._items -= len(filed)
            for e in filed:
                # Superseded filings and freed entries (expiry -1) do not match their second.
                if math.ceil(expiries[e]) == second:
                    yield e

    def next_second(self) -> float:
        return self._seconds[0] if self._seconds else math.inf

    def _compact(self, expiries: array[float]) -> None:
        """Drop superseded filings (every refresh files the entry again)."""
        wheel: dict[int, array[int]] = {}
        for e, expires in enumerate(expiries):
            if expires >= 0:
                _file(wheel, math.ceil(expires), e)
        self._wheel = wheel
        self._seconds = sorted(wheel)
        self._items = live = sum(len(v) for v in wheel.values())
        self._limit = max(4096, 2 * live)


def _file(wheel: dict[int, array[int]], second: int, e: int) -> bool:
    """File entry ``e`` under ``second``; True if that second was not in the wheel yet."""
    filed = wheel.get(second)
    if filed is None:
        wheel[second] = array("I", (e,))
        return True
    filed.append(e)
    return False


class Markers:
    """(deadline, subnet) of queried subnets, earliest first."""

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[tuple[float, Subnet]] = []

    def push(self, deadline: float, subnet: Subnet) -> None:
        heapq.heappush(self._heap, (deadline, subnet))

    def due(self, now: float) -> Iterator[tuple[float, Subnet]]:
        heap = self._heap
        while heap and heap[0][0] <= now:
            yield heapq.heappop(heap)

    def next_deadline(self) -> float:
        return self._heap[0][0] if self._heap else math.inf
