"""Our own /64: its Update, sent on every new link, every 5 minutes and after a seqno bump
(babeld's xroute; docs/routing.md §4.8, §4.9)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..wire.tlv import SeqnoRequest, Update
from .arithmetic import seqno_gt, seqno_next
from .constants import SEQNO_BUMP_TIMEOUT, UPDATE_INTERVAL_CS
from .decisions import N
from .neighbour import Neighbour
from .state import RouterState


def send_own_update(r: RouterState[N], to: Iterable[Neighbour[N]], now: float) -> None:
    upd = Update(r.subnet, r.seqno, 0, r.router_id, UPDATE_INTERVAL_CS)
    r.sources.note_sent((r.subnet, r.router_id), r.seqno, 0, now)
    out = r.outgoing
    for n in to:
        out.append((n.id, upd))


def on_seqno_request_for_us(r: RouterState[N], request: SeqnoRequest, now: float) -> None:
    """A seqno request naming our router ID: bump our seqno if it asks for a newer one for our
    /64; never forwarded, as with the reference.

    Bumps are at least 4 s apart. Deviation: the reference ignores a request arriving sooner;
    we bump when the 4 s are over. Its requesters would not ask again for a minute (they
    remember having asked), so an ignored request stalls their recovery that long.
    """
    actions = r.counters.seqno_requests
    if request.subnet == r.subnet and seqno_gt(request.seqno, r.seqno):
        if now - r.last_bump >= SEQNO_BUMP_TIMEOUT:
            bump_seqno(r, now)
        else:
            r.bump_due = r.last_bump + SEQNO_BUMP_TIMEOUT
    else:
        actions["ttl_expired" if request.hop_count < 2 else "unhandled"] += 1


def bump_seqno(r: RouterState[N], now: float) -> None:
    """A newer seqno for our /64, announced to every neighbour."""
    r.seqno = seqno_next(r.seqno)
    r.last_bump = now
    r.bump_due = math.inf
    send_own_update(r, r.by_id.values(), now)
    r.counters.seqno_requests["bump_seqno"] += 1
