"""Prometheus metrics of a running node, under the reference's metric names where one maps.

A custom collector reads the node's own counters at scrape time, so the hot paths count with
plain integer increments and nothing here runs per packet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..links.peer_manager import ConnectionState

if TYPE_CHECKING:
    from ..node import Node

#: The reference's ``tlv_type`` label values.
_TLV_LABELS = {
    "Hello": "hello",
    "Ihu": "ihu",
    "Update": "update",
    "RouteRequest": "route_request",
    "SeqnoRequest": "seqno_request",
}


class NodeCollector:
    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        counters = self.node.router.counters
        tlvs = CounterMetricFamily(
            "mycelium_router_processed_tlvs", "Amount of processed TLVs", labels=["tlv_type"]
        )
        for kind, label in _TLV_LABELS.items():
            tlvs.add_metric([label], counters.tlvs_by_type.get(kind, 0))
        yield tlvs
        yield CounterMetricFamily(
            "mycelium_router_received_tlvs",
            "Amount of received TLVs",
            value=sum(counters.tlvs_by_type.values()),
        )
        yield CounterMetricFamily(
            "mycelium_router_peer_added", "Amount of peers added", value=counters.neighbours_added
        )
        yield CounterMetricFamily(
            "mycelium_router_peer_removed",
            "Amount of peers removed",
            value=counters.neighbours_removed,
        )
        yield CounterMetricFamily(
            "mycelium_router_peer_died",
            "Amount of peers declared dead",
            value=counters.neighbours_died,
        )
        yield CounterMetricFamily(
            "mycelium_router_triggered_updates",
            "Amount of triggered updates sent",
            value=counters.triggered_updates,
        )
        yield CounterMetricFamily(
            "mycelium_router_update_denied",
            "Updates denied by a filter",
            value=counters.updates_filtered,
        )
        yield GaugeMetricFamily(
            "mycelium_peer_manager_known_peers",
            "Amount of known peers in the peer manager",
            value=len(self.node.peer_manager.peers()),
        )
        # Not in the reference: the same peers by state (alive, connecting, ...).
        by_state = GaugeMetricFamily(
            "pymycelium_peer_manager_peers_by_state",
            "Known peers by connection state",
            labels=["connection_state"],
        )
        states = [entry.state for entry in self.node.peer_manager.peers()]
        for state in ConnectionState:
            by_state.add_metric([state.value], states.count(state))
        yield by_state
        yield from self._data_plane()

    def _data_plane(self) -> Iterator[Metric]:
        c = self.node.dataplane.counters
        routed = CounterMetricFamily(
            "mycelium_router_packets_routed",
            "What happened to a routed data packet",
            labels=["verdict"],
        )
        for verdict, value in (
            ("local", c.delivered + c.messages_received + c.icmp_received),
            ("forward", c.forwarded),
            ("ttl_expired", c.hop_limit_expired),
            ("no_route", c.no_route),
        ):
            routed.add_metric([verdict], value)
        yield routed
        # The reference splits "queue full" into global and per-subnet; this node has one limit
        # check, reported as per-subnet.
        outbound = CounterMetricFamily(
            "mycelium_router_outbound_packet_queue",
            "Events related to the outbound packet queue for packets waiting on route discovery",
            labels=["event"],
        )
        for event, value in (
            ("enqueued", c.queued),
            ("dequeued", c.queue_released),
            ("dropped_query_timeout", c.queue_timeout),
            ("queue_full_subnet", c.queue_full),
        ):
            outbound.add_metric([event], value)
        yield outbound
        incoming = CounterMetricFamily(
            "mycelium_router_incoming_packet_queue",
            "Events related to the incoming packet queue for packets waiting on sender route "
            "discovery",
            labels=["event"],
        )
        incoming.add_metric(["enqueued"], c.awaiting_key)
        yield incoming


def build_app(node: Node) -> web.Application:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))  # type: ignore[arg-type]

    async def scrape(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/metrics", scrape), web.get("/", scrape)])
    return app
