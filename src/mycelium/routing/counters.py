"""What the router counts for the metrics endpoint (names follow the reference's where they map)."""

from __future__ import annotations

from ..wire.tlv import Hello, Ihu, RouteRequest, SeqnoRequest, Update

#: The reference's ``action`` labels for received seqno requests.
SEQNO_ACTIONS = (
    "reply_local",
    "bump_seqno",
    "ttl_expired",
    "forward_feasible",
    "forward_unfeasible",
    "unhandled",
)


class RouterCounters:
    __slots__ = (
        "dumps_rate_limited",
        "ihus_rate_limited",
        "neighbours_added",
        "neighbours_died",
        "neighbours_removed",
        "origin_requests_rate_limited",
        "requests_ignored",
        "route_requests_rate_limited",
        "route_selections",
        "routes_expired_removed",
        "routes_expired_retracted",
        "routes_refused_neighbour_limit",
        "routes_refused_table_full",
        "selected_routes_expired",
        "seqno_requests",
        "seqno_requests_rate_limited",
        "tlvs_by_type",
        "tlvs_from_unknown_neighbour",
        "triggered_updates",
        "updates_filtered",
        "updates_not_interested",
        "updates_skipped_selection",
        "updates_to_dead_neighbour",
        "wildcard_route_requests",
    )

    def __init__(self) -> None:
        self.tlvs_from_unknown_neighbour = 0
        self.updates_filtered = 0
        #: Updates for an unknown subnet that were retractions or unfeasible.
        self.updates_not_interested = 0
        #: Updates processed without running route selection (they could not be selected).
        self.updates_skipped_selection = 0
        #: Updates not queued because their neighbour had been declared dead.
        self.updates_to_dead_neighbour = 0
        self.requests_ignored = 0
        self.wildcard_route_requests = 0
        #: Selected routes (or retractions) propagated after a change or to interested peers.
        self.triggered_updates = 0
        self.neighbours_added = 0
        self.neighbours_removed = 0
        self.neighbours_died = 0
        #: Selections run because a neighbour went away: the reference's help text also names
        #: expiry, but it reselects inline there without counting.
        self.route_selections = 0
        #: Expired entries: unselected ones are removed, selected ones retracted.
        self.routes_expired_removed = 0
        self.routes_expired_retracted = 0
        self.selected_routes_expired = 0
        #: What happened to received seqno requests, by the reference's ``action`` label.
        self.seqno_requests: dict[str, int] = dict.fromkeys(SEQNO_ACTIONS, 0)
        #: Dropped at a limit (routing/limits.py): our own protections, not the reference's.
        self.routes_refused_table_full = 0
        self.routes_refused_neighbour_limit = 0
        self.ihus_rate_limited = 0
        self.route_requests_rate_limited = 0
        self.seqno_requests_rate_limited = 0
        self.origin_requests_rate_limited = 0
        self.dumps_rate_limited = 0
        #: TLV class -> received from a live neighbour.
        self.tlvs_by_type: dict[type, int] = dict.fromkeys(
            (Update, Hello, Ihu, RouteRequest, SeqnoRequest), 0
        )
