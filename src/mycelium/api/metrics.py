"""Prometheus metrics of a running node, under the reference's metric names and labels.

A custom collector reads the node's own counters at scrape time, so the hot paths count with
plain integer increments and nothing here runs per packet. The text is rendered here rather than
by prometheus_client, whose exposition renames every counter to ``<name>_total``: the reference
(Rust ``prometheus`` crate) exposes counters under their bare names, and dashboards query those.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..links.backlog import BacklogCounts
from ..links.peer_manager import ConnectionState, PeerType
from ..routing.counters import SEQNO_ACTIONS
from ..wire.tlv import Hello, Ihu, RouteRequest, SeqnoRequest, Update
from .guard import protect

if TYPE_CHECKING:
    from ..node import Node

#: The reference's ``tlv_type`` label values.
_TLV_LABELS = {
    Hello: "hello",
    Ihu: "ihu",
    Update: "update",
    RouteRequest: "route_request",
    SeqnoRequest: "seqno_request",
}
#: The reference's labels of time spent per TLV type (``seqno``, not ``seqno_request``).
_TIME_LABELS = {
    Hello: "hello",
    Ihu: "ihu",
    Update: "update",
    RouteRequest: "route_request",
    SeqnoRequest: "seqno",
}
_PEER_TYPE_LABELS = {
    PeerType.STATIC: "static",
    PeerType.INBOUND: "inbound",
    PeerType.LINK_LOCAL_DISCOVERY: "link_local",
}


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _labelled(
    name: str, documentation: str, label: str, values: dict[str, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family


class NodeCollector:
    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        yield from self._router()
        yield from self._peer_manager()
        yield from self._data_plane()
        yield from self._messages()
        yield from self._links()

    def _links(self) -> Iterator[Metric]:
        # Not in the reference, which bounds none of this (SECURITY.md, Limits).
        node = self.node
        backlogs = BacklogCounts()
        backlogs.add(node.closed_backlogs)
        for link in node.links:
            backlogs.add(link.backlog)
        yield _labelled(
            "pymycelium_link_backlog",
            "Frames held for congested links that were coalesced or dropped, by event",
            "event",
            {
                "coalesced": backlogs.coalesced,
                "dropped_control": backlogs.dropped_control,
                "dropped_data": backlogs.dropped_data,
            },
        )
        refused = CounterMetricFamily(
            "pymycelium_inbound_refused",
            "Inbound connections refused at the listeners' limits, by listener and limit",
            labels=["listener", "limit"],
        )
        for listener, limits in (("stream", node.stream_limits), ("quic", node.quic_limits)):
            refused.add_metric([listener, "total"], limits.refused_total)
            refused.add_metric([listener, "per_source"], limits.refused_per_source)
        yield refused
        quic = node.quic_endpoint
        yield _labelled(
            "pymycelium_quic_initials",
            "QUIC Initials answered with a Retry, or dropped (bad token, limits, version)",
            "event",
            {
                "retry_sent": quic.retries_sent if quic is not None else 0,
                "dropped": quic.initials_dropped if quic is not None else 0,
            },
        )
        dataplane = node.dataplane
        yield _counter(
            "pymycelium_replayed_packets",
            "Copies of recently delivered packets dropped by the replay window",
            dataplane.replay.replayed,
        )
        yield _counter(
            "pymycelium_icmp_rate_limited",
            "ICMPv6 errors not sent because of their rate limit",
            dataplane.counters.icmp_rate_limited,
        )

    def _messages(self) -> Iterator[Metric]:
        # Not in the reference, which counts nothing of its message bus.
        yield _labelled(
            "pymycelium_messages",
            "Message-bus events, by event (docs/messages.md)",
            "event",
            asdict(self.node.message_engine.counters),
        )

    def _router(self) -> Iterator[Metric]:
        c = self.node.router.counters
        by_type = {label: c.tlvs_by_type.get(kind, 0) for kind, label in _TLV_LABELS.items()}
        by_type["route_request"] -= c.wildcard_route_requests
        by_type["wildcard_route_request"] = c.wildcard_route_requests
        yield _labelled(
            "mycelium_router_processed_tlvs",
            "Amount of processed TLVs from peers, by type of TLV",
            "tlv_type",
            by_type,
        )
        yield _counter(
            "mycelium_router_received_tlvs",
            "Amount of TLVs received from peers",
            sum(c.tlvs_by_type.values()) + c.tlvs_from_unknown_neighbour,
        )
        yield _counter(
            "mycelium_router_tlv_source_died",
            "Received TLVs dropped because their peer had died before they were processed",
            c.tlvs_from_unknown_neighbour,
        )
        # TLVs are handled as they are read, never queued, so none is ever discarded for load.
        yield _counter(
            "mycelium_router_tlv_discarded",
            "Received TLVs not processed because the router could not keep up",
            0,
        )
        spent = self.node.tlv_handling_ns
        yield _labelled(
            "mycelium_router_tlv_handling_time",
            "Time spent handling incoming TLVs, in nanoseconds",
            "tlv_type",
            {label: spent.get(kind, 0) for kind, label in _TIME_LABELS.items()},
        )
        # Selected routes are propagated as they change, not by a periodic task (the reference
        # registers this metric but never updates it either).
        yield _counter(
            "mycelium_router_propagate_selected_route_time",
            "Time spent in periodic propagation of selected routes, in nanoseconds",
            0,
        )
        yield _counter(
            "mycelium_router_peer_added", "Peers added to the router", c.neighbours_added
        )
        yield _counter(
            "mycelium_router_peer_removed", "Peers removed from the router", c.neighbours_removed
        )
        yield _counter(
            "mycelium_router_peer_died",
            "Peers the router found dead, or whose connection reported itself gone",
            c.neighbours_died,
        )
        yield _counter(
            "mycelium_router_route_selections",
            "Route selections run because a peer went away (not those after an update)",
            c.route_selections,
        )
        yield _counter(
            "mycelium_router_source_key_expired",
            "Feasibility distances dropped after their hold time",
            self.node.router.sources.expired,
        )
        yield _labelled(
            "mycelium_router_expired_routes",
            "Expired route entries, by what was done with them",
            "action",
            {"removed": c.routes_expired_removed, "retracted": c.routes_expired_retracted},
        )
        yield _counter(
            "mycelium_router_selected_route_expired",
            "Selected routes whose hold time ran out",
            c.selected_routes_expired,
        )
        yield _counter(
            "mycelium_router_triggered_updates",
            "Selected routes or retractions propagated after a change or to interested peers",
            c.triggered_updates,
        )
        yield _labelled(
            "mycelium_router_seqno_handling",
            "Received seqno requests, by how they were handled",
            "action",
            {action: c.seqno_requests[action] for action in SEQNO_ACTIONS},
        )
        yield _counter(
            "mycelium_router_update_dead_peer",
            "Updates not sent because their peer was found dead",
            c.updates_to_dead_neighbour,
        )
        yield _counter(
            "mycelium_router_update_skipped_route_selection",
            "Updates processed without route selection, as they could not be selected anyway",
            c.updates_skipped_selection,
        )
        yield _counter(
            "mycelium_router_update_denied",
            "Updates refused by the prefix and key filters",
            c.updates_filtered,
        )
        yield _counter(
            "mycelium_router_update_not_interested",
            "Updates for an unknown subnet that were unfeasible or retractions",
            c.updates_not_interested,
        )
        # Not in the reference, which has no such limits (docs/routing.md §2.1).
        yield _labelled(
            "pymycelium_router_limited",
            "TLVs refused or left unanswered at one of the router's limits, by limit",
            "limit",
            {
                "table_full": c.routes_refused_table_full,
                "routes_per_peer": c.routes_refused_neighbour_limit,
                "ihu_rate": c.ihus_rate_limited,
                "route_request_rate": c.route_requests_rate_limited,
                "seqno_request_rate": c.seqno_requests_rate_limited,
                "origin_request_rate": c.origin_requests_rate_limited,
                "dump_rate": c.dumps_rate_limited,
            },
        )

    def _peer_manager(self) -> Iterator[Metric]:
        manager = self.node.peer_manager
        yield _labelled(
            "mycelium_peer_manager_peers_added",
            "Inbound and discovered peers the peer manager took on, by type",
            "peer_type",
            {label: manager.added[kind] for kind, label in _PEER_TYPE_LABELS.items()},
        )
        yield _labelled(
            "mycelium_peer_manager_connection_attempts",
            "Connections the peer manager started to remotes, and finished",
            "connection_state",
            {"started": manager.attempts_started, "finished": manager.attempts_finished},
        )
        peers = manager.peers()
        yield GaugeMetricFamily(
            "mycelium_peer_manager_known_peers",
            "Peers currently in the peer manager's table",
            value=len(peers),
        )
        # Not in the reference: the same peers by state (alive, connecting, ...).
        by_state = GaugeMetricFamily(
            "pymycelium_peer_manager_peers_by_state",
            "Known peers by connection state",
            labels=["connection_state"],
        )
        states = [entry.state for entry in peers]
        for state in ConnectionState:
            by_state.add_metric([state.value], states.count(state))
        yield by_state

    def _data_plane(self) -> Iterator[Metric]:
        dataplane = self.node.dataplane
        c = dataplane.counters
        # As the reference's router step counts them: packets we originate are forwarded too,
        # and local ones are counted before decryption.
        yield _labelled(
            "mycelium_router_packets_routed",
            "Data packets through the router step, by outcome",
            "verdict",
            {
                "local": c.routed_local,
                "forward": c.forwarded + c.sent,
                "ttl_expired": c.hop_limit_expired,
                "no_route": c.no_route,
            },
        )
        route_queue = dataplane.route_queue
        yield _labelled(
            "mycelium_router_outbound_packet_queue",
            "Our packets parked until a route query answers, by event",
            "event",
            {
                "enqueued": c.queued,
                "dequeued": c.queue_released,
                "dropped_query_timeout": c.queue_timeout,
                "queue_full_global": route_queue.full_global,
                "queue_full_subnet": route_queue.full_subnet,
            },
        )
        incoming_queue = dataplane.incoming_queue
        # Drops are refusals (counted by the queue) or timeouts: the timeouts are the rest.
        refused = incoming_queue.full_global + incoming_queue.full_subnet
        yield _labelled(
            "mycelium_router_incoming_packet_queue",
            "Packets for us parked until their sender's route is known, by event",
            "event",
            {
                "enqueued": c.awaiting_key,
                "dequeued": c.awaiting_key_released,
                "dropped_query_timeout": c.awaiting_key_dropped - refused,
                "queue_full_global": incoming_queue.full_global,
                "queue_full_subnet": incoming_queue.full_subnet,
            },
        )
        # Not in the reference, whose per-address maps are never pruned (stats packets).
        yield _counter(
            "pymycelium_packet_statistics_evicted",
            "Addresses dropped from the full per-address packet statistics",
            dataplane.packet_stats.evicted,
        )
        allow = dataplane.allow
        yield _counter(
            "pymycelium_packets_not_allowed",
            "Packets and messages for us dropped because --allow-from does not list their source",
            0 if allow is None else allow.dropped,
        )


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return _escape(text).replace('"', '\\"')


def render(families: Iterator[Metric]) -> str:
    """The text exposition format (0.0.4), counters under their family's own name."""
    lines: list[str] = []
    for family in families:
        name = family.name
        lines.append(f"# HELP {name} {_escape(family.documentation)}")
        lines.append(f"# TYPE {name} {family.type}")
        for sample in family.samples:
            sample_name = name if family.type == "counter" else sample.name
            value = sample.value
            number = str(int(value)) if float(value).is_integer() else repr(float(value))
            if sample.labels:
                labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sample.labels.items())
                lines.append(f"{sample_name}{{{labels}}} {number}")
            else:
                lines.append(f"{sample_name} {number}")
    return "\n".join(lines) + "\n"


def build_app(node: Node) -> web.Application:
    collector = NodeCollector(node)

    async def scrape(_: web.Request) -> web.Response:
        body = render(collector.collect()).encode()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    protect(app)  # a rebound page must not read the metrics either
    app.add_routes([web.get("/metrics", scrape), web.get("/", scrape)])
    return app
