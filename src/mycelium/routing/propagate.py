"""Updates we send for routes we selected: triggered propagation to every neighbour, answers
to one neighbour, and the full dump a wildcard request asks for (docs/routing.md §4.8)."""

from __future__ import annotations

from collections.abc import Iterable

from ..subnet import Subnet
from ..wire.tlv import INFINITY, Update
from .arithmetic import metric_add
from .constants import INTERVAL_NOT_REPEATING_CS, UPDATE_INTERVAL_CS
from .decisions import N
from .neighbour import Neighbour
from .state import RouterState
from .table import NONE


def advertised(
    r: RouterState[N], subnet: Subnet, s: int, e: int, metric: int, now: float
) -> Update:
    """The Update for entry ``e`` of slot ``s`` with ``metric``, noted in the source table."""
    t = r.table
    interval = (
        INTERVAL_NOT_REPEATING_CS
        if t.e_metric[e] == INFINITY and now > t.e_expires[e]
        else UPDATE_INTERVAL_CS
    )
    rid = t.e_rid.get(e)
    router_id = t.owner(s) if rid is None else rid
    seqno = t.e_seqno[e]
    # An entry's own ID is in e_rid exactly when it is not the owner's.
    column = s if rid is None else NONE
    r.sources.note_sent((subnet, router_id), seqno, metric, now, column)
    return Update(subnet, seqno, metric, router_id, interval)


def selected_for(r: RouterState[N], s: int, to: Neighbour[N], now: float) -> Update | None:
    """The Update of slot ``s``'s selected route for neighbour ``to``; None if it has no
    selected route or ``to`` is its next hop (no Update goes back where it came from)."""
    t = r.table
    if not t.sel[s]:
        return None
    sre = t.head[s]
    via = r.by_index[t.e_nb[sre]]
    if via is to:
        return None
    return advertised(r, t.subnet(s), s, sre, metric_add(t.e_metric[sre], via.link_cost), now)


def propagate_selected(
    r: RouterState[N], subnet: Subnet, s: int, to: Iterable[Neighbour[N]] | None, now: float
) -> None:
    """The selected route to everyone but its next hop, or our retraction to everyone.

    Each call is what the reference counts as a triggered update.
    """
    r.counters.triggered_updates += 1
    t = r.table
    skip: Neighbour[N] | None = None
    if s != NONE and t.sel[s]:
        sre = t.head[s]
        skip = r.by_index[t.e_nb[sre]]
        upd = advertised(r, subnet, s, sre, metric_add(t.e_metric[sre], skip.link_cost), now)
    else:
        # Retractions carry our own router ID and seqno, like the reference; they are not
        # recorded in the source table (RFC behaviour, a local difference only). See
        # docs/routing.md §4.3 and §4.8.
        upd = Update(subnet, r.seqno, INFINITY, r.router_id, UPDATE_INTERVAL_CS)
    out = r.outgoing
    for n in r.by_id.values() if to is None else to:
        if n is skip:
            continue
        if n.alive:
            out.append((n.id, upd))
        else:
            r.counters.updates_to_dead_neighbour += 1


def retraction(r: RouterState[N], subnet: Subnet) -> Update:
    """Our retraction of ``subnet``: it carries our own router ID and seqno, like the
    reference's, and is not recorded in the source table (RFC behaviour, a local difference)."""
    return Update(subnet, r.seqno, INFINITY, r.router_id, UPDATE_INTERVAL_CS)


def poison_next_hop(r: RouterState[N], subnet: Subnet, to: Neighbour[N]) -> None:
    """Our route to ``subnet`` now goes through ``to``, which split horizon leaves holding the
    Update we sent it for our previous route: withdraw that one (docs/routing.md §4.8).

    Deviation from the reference, which never corrects it. The stale entry can stay feasible
    at ``to`` when the destination restarted with a new router ID (distances are kept per
    router ID), and ``to`` would then route back through us: a loop the simulator found.
    """
    if to.alive:
        r.outgoing.append((to.id, retraction(r, subnet)))
