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
        known = GaugeMetricFamily(
            "mycelium_peer_manager_known_peers",
            "Known peers by connection state",
            labels=["connection_state"],
        )
        states = [entry.state for entry in self.node.peer_manager.peers()]
        for state in ConnectionState:
            known.add_metric([state.value], states.count(state))
        yield known


def build_app(node: Node) -> web.Application:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))  # type: ignore[arg-type]

    async def scrape(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/metrics", scrape), web.get("/", scrape)])
    return app
