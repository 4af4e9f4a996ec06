"""Short-lived memories of requests sent and received (docs/routing.md §5.4, §6.4)."""

from __future__ import annotations

from typing import Any

from ..identity import RouterId
from ..subnet import Subnet
from .constants import ROUTE_QUERY_TIMEOUT, SEQNO_DEDUP_TTL
from .neighbour import Neighbour

SeqnoKey = tuple[RouterId, Subnet, int]


class SeqnoInfo:
    __slots__ = ("first_sent", "last_sent", "sources", "targets")

    def __init__(self, now: float) -> None:
        self.sources: list[Neighbour[Any]] = []  # neighbours that asked us
        self.targets: list[Neighbour[Any]] = []  # neighbours we asked
        self.first_sent = now
        self.last_sent = now


class SeqnoCache:
    """Seqno requests we originated or forwarded. Entries live 60 to 120 s (swept every 60 s)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[SeqnoKey, SeqnoInfo] = {}

    def get(self, key: SeqnoKey) -> SeqnoInfo | None:
        return self._entries.get(key)

    def record(
        self, key: SeqnoKey, target: Neighbour[Any], source: Neighbour[Any] | None, now: float
    ) -> None:
        info = self._entries.get(key)
        if info is None:
            info = self._entries[key] = SeqnoInfo(now)
        if target not in info.targets:
            info.targets.append(target)
        if source is not None and source not in info.sources:
            info.sources.append(source)
        info.last_sent = now

    def sweep(self, now: float) -> None:
        dead = [k for k, v in self._entries.items() if now - v.first_sent > SEQNO_DEDUP_TTL]
        for k in dead:
            del self._entries[k]

    def __len__(self) -> int:
        return len(self._entries)


class RouteRequestInfo:
    __slots__ = ("generation", "receivers", "sent")

    def __init__(self, generation: int, receivers: list[Neighbour[Any]], sent: float) -> None:
        self.generation = generation
        self.receivers = receivers
        self.sent = sent


class RouteRequestCache:
    """Per subnet: the lowest generation we sent, to whom, and when; valid 15 s."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[Subnet, RouteRequestInfo] = {}

    def get(self, subnet: Subnet, now: float) -> RouteRequestInfo | None:
        info = self._entries.get(subnet)
        if info is not None and now - info.sent >= ROUTE_QUERY_TIMEOUT:
            del self._entries[subnet]
            return None
        return info

    def put(self, subnet: Subnet, info: RouteRequestInfo) -> None:
        self._entries[subnet] = info

    def sweep(self, now: float) -> None:
        dead = [k for k, v in self._entries.items() if now - v.sent >= ROUTE_QUERY_TIMEOUT]
        for k in dead:
            del self._entries[k]

    def __len__(self) -> int:
        return len(self._entries)
