"""Route requests (flooded with a generation, answered from the table) and seqno requests
(sent towards a route's origin to get a newer seqno) (docs/routing.md §5, §6)."""

from __future__ import annotations

from collections.abc import Iterable

from ..subnet import GLOBAL_SUBNET, Subnet
from ..wire.tlv import INFINITY, RouteRequest, SeqnoRequest
from .announce import on_seqno_request_for_us, send_own_update
from .arithmetic import metric_add, seqno_lt, seqno_next
from .caches import RouteRequestInfo
from .constants import (
    MAX_RR_GENERATION,
    NODE_PREFIX_LEN,
    ROUTE_QUERY_TIMEOUT,
    SEQNO_BUMP_TIMEOUT,
    SEQNO_REQUEST_HOP_COUNT,
)
from .decisions import N
from .neighbour import Neighbour
from .propagate import advertised, selected_for
from .source_table import SourceKey
from .state import RouterState
from .table import NONE


# --- route requests ---------------------------------------------------------------------------
def mark_queried(r: RouterState[N], subnet: Subnet, now: float) -> None:
    deadline = now + ROUTE_QUERY_TIMEOUT
    if r.table.mark_queried(subnet, deadline):
        r.markers.push(deadline, subnet)


def flood_route_request(
    r: RouterState[N], subnet: Subnet, generation: int, came_from: Neighbour[N] | None, now: float
) -> None:
    """Ask every live neighbour but ``came_from`` for ``subnet``, skipping those already asked
    with this generation or a lower one in the last 15 s; marks the subnet queried."""
    mark_queried(r, subnet, now)
    cached = r.rr_cache.get(subnet, now)
    skip = cached.receivers if cached is not None and generation >= cached.generation else ()
    request = RouteRequest(subnet, generation)
    receivers = [n for n in r.by_id.values() if n.alive]
    out = r.outgoing
    for n in receivers:
        if n is not came_from and n not in skip:
            out.append((n.id, request))
    r.rr_cache.put(subnet, RouteRequestInfo(generation, receivers, now))


def on_route_request(r: RouterState[N], n: Neighbour[N], rr: RouteRequest, now: float) -> None:
    subnet = rr.subnet
    if subnet is None:
        r.counters.wildcard_route_requests += 1
        if take_dump(r, n, now):
            send_full_dump(r, n, now)
        return
    if not n.route_requests.take(now):
        r.counters.route_requests_rate_limited += 1
        return
    if r.subnet.contains_subnet(subnet):
        send_own_update(r, (n,), now)
        return
    # Safe deviation (docs/routing.md §5.3): requests outside 400::/7 or shorter than /64 are
    # neither answered, forwarded nor marked; the reference never originates them.
    if subnet.prefix_len < NODE_PREFIX_LEN or not GLOBAL_SUBNET.contains_subnet(subnet):
        r.counters.requests_ignored += 1
        return
    t = r.table
    s = t.find(subnet)
    if s != NONE:
        upd = selected_for(r, s, n, now)
        if upd is not None:
            r.outgoing.append((n.id, upd))
        return
    deadline = t.queried.get(subnet)
    if deadline is not None:
        if deadline > now:
            return
        t.unmark_queried(subnet)
    generation = rr.generation + 1
    if generation >= MAX_RR_GENERATION:
        return
    flood_route_request(r, subnet, generation, n, now)


def take_dump(r: RouterState[N], n: Neighbour[N], now: float) -> bool:
    """Whether ``n`` may get our selected routes now (one per neighbour per dump interval, and
    the budget for all); a refusal is counted, a grant starts ``n``'s interval."""
    if now - n.last_dump < r.limits.dump_interval or not r.dumps.take(now):
        r.counters.dumps_rate_limited += 1
        return False
    n.last_dump = now
    return True


def send_full_dump(r: RouterState[N], n: Neighbour[N], now: float) -> None:
    """Every selected route (but those through ``n``) and our own /64, to ``n``."""
    send_selected_routes(r, n, now)
    send_own_update(r, (n,), now)


def send_selected_routes(r: RouterState[N], n: Neighbour[N], now: float) -> None:
    out = r.outgoing
    for s in list(r.table.slots()):
        upd = selected_for(r, s, n, now)
        if upd is not None:
            out.append((n.id, upd))


def greet_neighbour(r: RouterState[N], n: Neighbour[N], now: float) -> None:
    """A new neighbour gets our /64 and, if the dump budget allows, our selected routes.

    Deviation (docs/routing.md §3.1): the reference sends only its /64. Routes acquired before
    a link came up then never cross it until they change, so a neighbour can lack our better
    path for good; when the path it does use breaks, it asks for a newer seqno on that side
    only, and a reference node ignores every retry of that request for a minute."""
    send_own_update(r, (n,), now)
    if r.table.live and take_dump(r, n, now):
        send_selected_routes(r, n, now)


# --- seqno requests ---------------------------------------------------------------------------
def send_seqno_request(
    r: RouterState[N], source: SourceKey, to: Neighbour[N] | None, now: float
) -> int:
    """Ask ``to`` (or the neighbours that announced the subnet, not recently asked) for a newer
    seqno of ``source``. Returns how many neighbours it was sent to."""
    subnet, router_id = source
    fd = r.sources.get(source, now)
    want = seqno_next(fd[1] if fd is not None else 0)
    request = SeqnoRequest(subnet, want, router_id, SEQNO_REQUEST_HOP_COUNT)
    key = (router_id, subnet, want)
    cache = r.seqno_cache
    info = cache.get(key)
    if to is not None:
        targets: Iterable[Neighbour[N]] = (to,)
    else:
        recent = (
            info.targets if info is not None and now - info.last_sent < SEQNO_BUMP_TIMEOUT else ()
        )
        t = r.table
        s = t.find(subnet)
        nbs = r.by_index
        holders = (
            [] if s == NONE else [nbs[t.e_nb[e]] for e in t.entries(s) if t.e_metric[e] != INFINITY]
        )
        # Deviation: a neighbour whose only entry is a retraction cannot pass the request on
        # (it lost the route with us); when no neighbour holds a finite route, ask them all,
        # as the reference does only for subnets it has never heard of. This is what lets the
        # two ends of a silently cut link find each other again without waiting for timeouts.
        targets = [x for x in holders or r.by_id.values() if x not in recent]
    # Neighbours that asked us the same are not asked back for a moment (they are asking
    # elsewhere). Deviation: the reference skips them for as long as it remembers the request,
    # and two neighbours that asked each other then never ask again; an unfeasible Update from
    # one of them (``to``) is always answered with a request.
    recently = info is not None and now - info.last_sent < SEQNO_BUMP_TIMEOUT
    asked_us = info.sources if info is not None and to is None and recently else ()
    out = r.outgoing
    sent = 0
    for target in targets:
        if target in asked_us or not target.alive:
            continue
        out.append((target.id, request))
        cache.record(key, target, None, now)
        sent += 1
    return sent


def on_seqno_request(r: RouterState[N], n: Neighbour[N], req: SeqnoRequest, now: float) -> None:
    if not n.seqno_requests.take(now):
        r.counters.seqno_requests_rate_limited += 1
        return
    key = (req.router_id, req.subnet, req.seqno)
    cache = r.seqno_cache
    info = cache.get(key)
    actions = r.counters.seqno_requests
    # Deviation: the reference drops any request for a key it sent within the last minute, so
    # a request that died further on (a neighbour that had just lost the route, a link that
    # had just come up) blocks every retry for that minute. We only skip neighbours asked in
    # the last 4 s; the per-neighbour request budget (routing/limits.py) bounds the rest.
    t = r.table
    s = t.find(req.subnet)
    sre = t.head[s] if s != NONE and t.sel[s] else NONE
    if (
        sre != NONE
        and t.e_metric[sre] != INFINITY
        and (req.router_id != t.router_id(sre) or not seqno_lt(t.e_seqno[sre], req.seqno))
    ):
        # The reference adds the requester's link cost here, not the next hop's.
        metric = metric_add(t.e_metric[sre], n.link_cost)
        r.outgoing.append((n.id, advertised(r, req.subnet, s, sre, metric, now)))
        actions["reply_local"] += 1
        return
    if req.router_id == r.router_id:
        on_seqno_request_for_us(r, req, now)
        return
    if req.hop_count < 2:
        actions["ttl_expired"] += 1
        return
    if s == NONE:
        actions["unhandled"] += 1
        return
    recent = info.targets if info is not None and now - info.last_sent < SEQNO_BUMP_TIMEOUT else ()
    forwarded = SeqnoRequest(req.subnet, req.seqno, req.router_id, req.hop_count - 1)
    nbs = r.by_index
    feasible = r.sources.feasible_entry
    for want_feasible in (True, False):
        for e in t.entries(s):
            target = nbs[t.e_nb[e]]
            if (
                target is n
                or not target.alive
                or t.e_metric[e] == INFINITY
                or target in recent
                or (want_feasible and not feasible(s, e, now))
            ):
                continue
            r.outgoing.append((target.id, forwarded))
            cache.record(key, target, n, now)
            actions["forward_feasible" if want_feasible else "forward_unfeasible"] += 1
            return
    if info is not None and n not in info.sources:
        # Already asked on its behalf by others: the newer seqno, when it comes, goes to it
        # too (the reference forgets it, and the requester waits a minute to ask again).
        info.sources.append(n)
    actions["unhandled"] += 1
