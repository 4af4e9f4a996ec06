"""The web dashboard: a static page at ``/`` and the read-only JSON it needs beyond the
reference's API, under ``/api/v1/pymycelium`` (docs/dashboard.md).

The page lives on the REST server's own origin, so it reaches the API with plain same-origin
requests and whatever guards the API has apply to it unchanged. Its files ship in the package
and are read once, when the app is built; only names listed here are served, so no request
path ever reaches the file system. Every JSON handler reads counters the node already keeps:
nothing here runs per packet.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import REFERENCE_VERSION, __version__

if TYPE_CHECKING:
    from .facade import NodeApi

PREFIX = "/api/v1/pymycelium"

#: File name -> content type; the page's whole tree.
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}

#: Nothing but the page's own files and requests to its own origin; no framing (clickjacking
#: the add/remove buttons), no inline script for an injected string to become.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

#: Data-plane counters of packets dropped, summed into the graphs' "dropped" series.
DROP_COUNTERS = (
    "tun_too_short",
    "tun_not_ipv6",
    "tun_too_large",
    "tun_local_unreachable",
    "tun_bad_source",
    "tun_hop_limit",
    "message_too_large",
    "queue_full",
    "queue_timeout",
    "queue_route_lost",
    "hop_limit_expired",
    "no_route",
    "oob_icmp_dropped",
    "icmp_malformed",
    "icmp_no_key",
    "decrypt_failed",
    "bad_payload",
    "awaiting_key_dropped",
)


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _static_handler(name: str, content_type: str) -> Handler:
    body = resources.files("mycelium.api").joinpath("static", name).read_bytes()

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": content_type, **_HEADERS})

    return serve


class DashboardData:
    """The JSON documents of ``/api/v1/pymycelium``, read from a running node."""

    def __init__(self, api: NodeApi) -> None:
        self.api = api
        self.node = api.node

    def node_info(self) -> dict[str, Any]:
        node = self.node
        config = node.config
        return {
            "version": __version__,
            "referenceVersion": REFERENCE_VERSION,
            "uptime": round(time.monotonic() - node.started_at, 1),
            "tun": {
                "enabled": node.tun is not None,
                "name": None if config.no_tun else config.tun_name,
            },
            "privateNetwork": None if config.private is None else config.private.name,
            "listen": {"tcp": node.tcp_port, "quic": node.quic_port},
        }

    def links(self) -> list[dict[str, Any]]:
        """Per connected peer: the ``nextHop`` text its routes carry and its link cost."""
        router = self.node.router
        out = []
        for entry in self.node.peer_manager.peers():
            link = entry.link
            if link is None:
                continue
            out.append(
                {
                    "endpoint": str(entry.endpoint),
                    "connectionId": link.connection_id,
                    "linkCost": router.link_cost(link),
                    "staticCost": link.static_cost,
                }
            )
        return out

    def counters(self) -> dict[str, Any]:
        """Cumulative totals; the page turns two readings into rates with ``time``."""
        node = self.node
        dataplane = node.dataplane
        c = dataplane.counters.as_dict()
        stats = dataplane.packet_stats
        subnet = node.identity.subnet
        peers = node.peer_manager.peers()
        return {
            "time": round(node.now(), 3),
            "packets": {
                "sent": c["sent"],
                "forwarded": c["forwarded"],
                "local": c["routed_local"],
                "dropped": sum(c[name] for name in DROP_COUNTERS),
            },
            "bytes": {
                # Encrypted data-packet bytes through the router step (``stats packets``);
                # a total can fall when that table forgets quiet addresses.
                "routed": sum(entry[1] for entry in stats.by_src.values()),
                "local": sum(
                    entry[1] for address, entry in stats.by_dst.items() if subnet.contains(address)
                ),
                "linkIn": sum(entry.rx_bytes for entry in peers),
                "linkOut": sum(entry.tx_bytes for entry in peers),
            },
            "drops": {name: c[name] for name in DROP_COUNTERS},
            "dataPlane": c,
        }

    def messages(self) -> dict[str, Any]:
        engine = self.node.message_engine
        topics = engine.topics
        return {
            "inbox": engine.inbox_size,
            "counters": asdict(engine.counters),
            "acceptByDefault": topics.accept_by_default,
            "topics": [
                {
                    "topic": base64.b64encode(topic).decode(),
                    "sources": len(topics.sources(topic) or ()),
                    "forwardSocket": topics.forward_socket(topic),
                }
                for topic in topics.topics()
            ],
        }


def add_dashboard_routes(app: web.Application, api: NodeApi) -> None:
    """The page at ``/`` (and its files under ``/dashboard/``) and its JSON endpoints."""
    data = DashboardData(api)

    def json_route(path: str, read: Callable[[], Any]) -> web.RouteDef:
        async def handler(_: web.Request) -> web.Response:
            return web.json_response(read(), headers={"Cache-Control": "no-store"})

        return web.get(PREFIX + path, handler)

    routes = [
        web.get("/", _static_handler("index.html", STATIC_FILES["index.html"])),
        json_route("/node", data.node_info),
        json_route("/links", data.links),
        json_route("/counters", data.counters),
        json_route("/messages", data.messages),
    ]
    routes += [
        web.get(f"/dashboard/{name}", _static_handler(name, ctype))
        for name, ctype in STATIC_FILES.items()
        if name != "index.html"
    ]
    app.add_routes(routes)
