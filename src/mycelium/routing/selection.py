"""Updates received, route selection among feasible entries, expiry and retraction
(docs/routing.md §4.4 to §4.10)."""

from __future__ import annotations

from functools import lru_cache

from ..identity import overlay_address
from ..subnet import GLOBAL_SUBNET
from ..wire.tlv import INFINITY, Update
from .arithmetic import hold_time, metric_add, metric_sub
from .constants import (
    BIG_METRIC_CHANGE,
    NODE_PREFIX_LEN,
    RETRACTED_ROUTE_HOLD_TIME,
    SIGNIFICANT_METRIC_IMPROVEMENT,
)
from .decisions import N
from .neighbour import Neighbour
from .propagate import poison_next_hop, propagate_selected
from .requests import send_seqno_request
from .source_table import SourceKey
from .state import RouterState
from .table import NONE, subnet_key

#: 400::/7 as a shift and the value of the top 7 bits.
_GLOBAL_SHIFT = 128 - GLOBAL_SUBNET.prefix_len
_GLOBAL_TOP = GLOBAL_SUBNET.network >> _GLOBAL_SHIFT


@lru_cache(maxsize=4096)
def _owner_address(router_id: bytes) -> int:
    """The overlay address a router ID's key owns (cached: every flooded Update is checked)."""
    return int.from_bytes(overlay_address(router_id[:32]), "big")


def on_update(r: RouterState[N], n: Neighbour[N], u: Update, now: float) -> None:
    """An Update from ``n``: filter it, check feasibility, refresh or add the entry, then
    reselect and propagate what changed (or ask for a newer seqno)."""
    subnet = u.subnet
    metric = u.metric
    network, plen = subnet
    # Inline: at least a /64, inside 400::/7, and (unless a retraction) holding the address
    # of the key in the router ID. Every flooded Update passes here.
    if (
        plen < NODE_PREFIX_LEN
        or network >> _GLOBAL_SHIFT != _GLOBAL_TOP
        or (metric != INFINITY and (_owner_address(u.router_id) ^ network) >> (128 - plen))
    ):
        r.counters.updates_filtered += 1
        return
    if subnet == r.subnet:
        return
    router_id = u.router_id
    seqno = u.seqno
    key: SourceKey = (subnet, router_id)
    seqno_cache = r.seqno_cache
    interested = seqno_cache.get((router_id, subnet, seqno)) if seqno_cache else None
    t = r.table
    counters = r.counters
    s = t.index.get(subnet_key(subnet), NONE)
    owned = s != NONE and t.owned_by(s, router_id)
    if owned:
        feasible = r.sources.feasible_owned(s, seqno, metric, now)
    else:
        feasible = r.sources.feasible(key, seqno, metric, now, s)
    if s == NONE or t.head[s] == NONE:
        if not feasible or metric == INFINITY:
            if not feasible:
                send_seqno_request(r, key, n, now)
            counters.updates_not_interested += 1
            return
        if t.live >= r.limits.max_routes:
            counters.routes_refused_table_full += 1
            return
        if t.nb_refs[n.index] >= r.limits.max_routes_per_neighbour:
            counters.routes_refused_neighbour_limit += 1
            return
        s = t.open(subnet, router_id, r.sources.other)
        owned = True
        if t.queried:
            t.unmark_queried(subnet)
        old = e = NONE
    else:
        old = t.head[s] if t.sel[s] else NONE
        e = t.entry_for(s, n.index)
    e_rid = t.e_rid
    e_metric = t.e_metric
    # The old selection's router ID as a token: None for the slot owner's.
    old_rid = e_rid.get(old) if old != NONE else None
    old_metric = e_metric[old] if old != NONE else INFINITY

    if e != NONE:
        rid = e_rid.get(e)
        same_rid = owned if rid is None else rid == router_id
        if e == old and not feasible and same_rid:
            send_seqno_request(r, key, n, now)
            counters.updates_skipped_selection += 1
            return
        if e_metric[e] == INFINITY and metric == INFINITY:
            counters.updates_skipped_selection += 1
            return
        t.e_seqno[e] = seqno
        e_metric[e] = metric
        if not same_rid:
            t.set_router_id(e, router_id)
        if feasible:
            t.e_expires[e] = now + hold_time(u.interval_cs, metric)
            r.schedule(e)
        else:
            if e != old:
                counters.updates_skipped_selection += 1
                return
            t.unselect(s)
    else:
        if metric == INFINITY or not feasible:
            if not feasible and old == NONE:
                send_seqno_request(r, key, n, now)
            counters.updates_skipped_selection += 1
            return
        if t.nb_refs[n.index] >= r.limits.max_routes_per_neighbour:
            counters.routes_refused_neighbour_limit += 1
            return
        expires = now + hold_time(u.interval_cs, metric)
        e = t.add_entry(s, n.index, metric, seqno, expires, router_id, owned)
        r.schedule(e)

    new = find_best_route(r, s, now)
    if new != NONE:
        switch(r, s, old, new)
    elif old != NONE:
        lost = t.owner(s) if old_rid is None else old_rid
        send_seqno_request(r, (subnet, lost), None, now)
        t.unselect(s)

    if old != NONE and new != NONE:
        trigger = e_rid.get(new) != old_rid or abs(e_metric[new] - old_metric) > BIG_METRIC_CHANGE
        if old_metric == INFINITY and e_metric[new] != INFINITY:
            r.changes[subnet] = None
    else:
        # Acquired or lost: always triggered; acquisition is what floods new routes.
        trigger = old != NONE or new != NONE
        if trigger:
            r.changes[subnet] = None
    if trigger:
        propagate_selected(r, subnet, s, None, now)
    elif interested is not None and interested.sources:
        propagate_selected(r, subnet, s, interested.sources, now)


def switch(r: RouterState[N], s: int, old: int, new: int) -> None:
    """Select entry ``new`` of slot ``s`` in place of ``old`` (NONE: none was selected).

    When the next hop changes and so does the router ID, the new next hop hears that our route
    through the old one is gone (``poison_next_hop``). With one router ID the feasibility
    condition already keeps a stale Update of ours from being used there.
    """
    t = r.table
    stale = old != NONE and t.e_nb[old] != t.e_nb[new] and t.router_id(old) != t.router_id(new)
    t.select(s, new)
    if stale:
        poison_next_hop(r, t.subnet(s), r.by_index[t.e_nb[new]])


def find_best_route(r: RouterState[N], s: int, now: float) -> int:
    """Lowest metric plus link cost among feasible finite entries, with hysteresis."""
    t = r.table
    nbs = r.by_index
    e_metric = t.e_metric
    e_nb = t.e_nb
    e_next = t.e_next
    e_rid = t.e_rid
    e_seqno = t.e_seqno
    feasible_owned = r.sources.feasible_owned
    best = NONE
    best_total = 0
    e = t.head[s]
    while e != NONE:
        metric = e_metric[e]
        if metric != INFINITY and (
            feasible_owned(s, e_seqno[e], metric, now)
            if e not in e_rid
            else r.sources.feasible_entry(s, e, now)
        ):
            total = metric_add(metric, nbs[e_nb[e]].link_cost)
            if best == NONE or total < best_total:
                best, best_total = e, total
        e = e_next[e]
    current = t.head[s] if t.sel[s] else NONE
    if best != NONE and current != NONE and best != current:
        current_total = metric_add(e_metric[current], nbs[e_nb[current]].link_cost)
        much_better = best_total < metric_sub(current_total, SIGNIFICANT_METRIC_IMPROVEMENT)
        if not (much_better or e_metric[best] == 0):
            return current
    return best


def retract(r: RouterState[N], e: int, now: float) -> None:
    """The selected entry ``e`` turns infinite and stays a few seconds, so the retraction can be
    propagated and answered before the entry goes."""
    t = r.table
    t.e_metric[e] = INFINITY
    t.e_expires[e] = now + RETRACTED_ROUTE_HOLD_TIME
    r.schedule(e)


def entry_expired(r: RouterState[N], e: int, now: float) -> None:
    """An entry's hold time ran out: an unselected one goes, the selected one is retracted."""
    t = r.table
    s = t.e_slot[e]
    counters = r.counters
    if not (t.sel[s] and t.head[s] == e):
        counters.routes_expired_removed += 1
        t.remove_entry(e)
        return
    counters.routes_expired_retracted += 1
    counters.selected_routes_expired += 1
    retract(r, e, now)
    best = find_best_route(r, s, now)
    if best != NONE:
        switch(r, s, e, best)
    else:
        t.unselect(s)
    subnet = t.subnet(s)
    r.changes[subnet] = None
    propagate_selected(r, subnet, s, None, now)


def neighbour_died(r: RouterState[N], n: Neighbour[N], now: float) -> None:
    """Drop the gone neighbour's entries; retract and reselect where one was selected."""
    n.alive = False
    r.retired.append(n.index)
    t = r.table
    if not t.nb_refs[n.index]:
        return
    for s in list(t.slots()):
        e = t.entry_for(s, n.index)
        if e == NONE:
            continue
        if not (t.sel[s] and t.head[s] == e):
            t.remove_entry(e)
            continue
        retract(r, e, now)
        route_selection(r, s, now)


def route_selection(r: RouterState[N], s: int, now: float) -> None:
    """Reselect slot ``s`` after its selected entry was retracted (a neighbour went away)."""
    r.counters.route_selections += 1
    t = r.table
    first = t.head[s]
    first_selected = t.sel[s]
    had_valid = first_selected and t.e_metric[first] != INFINITY
    new = find_best_route(r, s, now)
    subnet = t.subnet(s)
    if new != NONE:
        if new == first and first_selected:
            return
        switch(r, s, first if first_selected else NONE, new)
        if not had_valid:
            r.changes[subnet] = None
    elif first_selected:
        send_seqno_request(r, (subnet, t.router_id(first)), None, now)
        t.unselect(s)
        r.changes[subnet] = None
    propagate_selected(r, subnet, s, None, now)
