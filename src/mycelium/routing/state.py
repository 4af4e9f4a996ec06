"""One router's memory, shared by the rule modules (neighbour, selection, announce, propagate,
requests) the way babeld's files share its globals; ``Router`` is its public face."""

from __future__ import annotations

import math
from typing import Generic

from ..identity import RouterId, node_subnet
from ..subnet import Subnet
from ..wire.tlv import Tlv
from .caches import RouteRequestCache, SeqnoCache
from .counters import RouterCounters
from .decisions import N
from .limits import RouterLimits, TokenBucket
from .neighbour import Neighbour
from .source_table import SourceTable
from .table import RouteTable
from .timers import ExpiryWheel, Markers


class RouterState(Generic[N]):
    def __init__(self, router_id: RouterId, now: float, limits: RouterLimits) -> None:
        self.router_id = router_id
        self.limits = limits
        #: Route requests we originate for our own packets and for packets we forward, and
        #: full-table dumps we send, in all.
        self.origin_requests = TokenBucket(limits.origin_rate, limits.origin_burst, now)
        self.transit_requests = TokenBucket(limits.origin_rate, limits.origin_burst, now)
        self.dumps = TokenBucket(limits.dump_rate, limits.dump_burst, now)
        self.subnet = node_subnet(router_id.public_key)
        #: Our own /64's network, compared with destinations as an int.
        self.own_net = self.subnet.network
        self.seqno = 0
        self.last_bump = now
        #: When a seqno bump asked for too soon after the last one is made (inf: none asked).
        self.bump_due = math.inf
        self.counters = RouterCounters()
        self.table = RouteTable()
        #: Its ``version`` changes whenever ``route`` or ``public_key_for`` could answer
        #: differently (the data plane keeps their answers per address while it holds).
        self.versioned = self.table
        self.sources = SourceTable(self.table)
        #: Live neighbours by the runtime's handle.
        self.by_id: dict[N, Neighbour[N]] = {}
        # Entries name neighbours by index; a gone neighbour's index is reused once no entry
        # names it any more (its retracted entries live a few seconds longer than it).
        self.by_index: list[Neighbour[N]] = []
        self.retired: list[int] = []
        self.seqno_cache = SeqnoCache()
        self.rr_cache = RouteRequestCache()
        self.wheel = ExpiryWheel()
        self.markers = Markers()
        #: Outputs, drained by the runtime through Router.take_*.
        self.outgoing: list[tuple[N, Tlv]] = []
        self.dead: list[N] = []
        self.changes: dict[Subnet, None] = {}

    def schedule(self, e: int) -> None:
        """File entry ``e`` for expiry at its current ``e_expires``."""
        expiries = self.table.e_expires
        self.wheel.file(e, expiries[e], expiries)
