"""``GET /api/v1/pymycelium/status``: the node at a glance, for ``mycelium status`` (read-only).

Not in the reference's API. The dashboard's node document (version, uptime, TUN, ports; see
``api/dashboard.py``) plus what a user checks first: identity, peers with their link cost, last
round trip and last error, route counts, the allow-list, and the warnings to act on.
docs/interfaces.md §6 describes the fields.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..links.peer_manager import ConnectionState, PeerEntry, PeerType
from .dashboard import PREFIX, DashboardData

if TYPE_CHECKING:
    from ..node import Node
    from .facade import NodeApi

PATH = PREFIX + "/status"

ISOLATED = (
    "no peer is connected: this node reaches no one. Add peers with --peers (or `mycelium peers "
    "add`), or join the public network with --public-peers"
)


def _peer(node: Node, entry: PeerEntry, now: float) -> dict[str, Any]:
    link = entry.link
    connected = entry.last_connected
    return {
        "endpoint": str(entry.endpoint),
        "type": entry.kind.value,
        "state": entry.state.value,
        "address": entry.address,
        "linkCost": None if link is None else node.router.link_cost(link),
        "rttMs": None if link is None else node.router.rtt(link),
        "connectedFor": None if link is None or connected is None else int(now - connected),
        "lastError": entry.last_error,
        "txBytes": entry.tx_bytes,
        "rxBytes": entry.rx_bytes,
    }


def _warnings(peers: list[dict[str, Any]], alive: int) -> list[str]:
    if alive == 0:
        return [ISOLATED]
    static = [p for p in peers if p["type"] == PeerType.STATIC.value]
    down = [p for p in static if p["state"] != ConnectionState.ALIVE.value]
    return [f"{len(down)} of {len(static)} configured peers are not connected"] if down else []


def status(data: DashboardData) -> dict[str, Any]:
    node = data.node
    config = node.config
    now = time.monotonic()
    peers = [_peer(node, e, now) for e in node.peer_manager.peers()]
    alive = sum(p["state"] == ConnectionState.ALIVE.value for p in peers)
    routes = node.router.routes()
    selected = sum(view.selected for view in routes)
    allow = node.dataplane.allow
    return {
        "address": str(node.address),
        "subnet": str(node.subnet),
        "publicKey": node.public_key,
        **data.node_info(),
        "vsockPort": config.vsock_listen_port,
        "discoveryPort": None if config.disable_peer_discovery else config.peer_discovery_port,
        "peers": peers,
        "peersAlive": alive,
        "routes": {
            "selected": selected,
            "fallback": len(routes) - selected,
            "queried": len(node.router.queried_subnets(node.now())),
        },
        "nat": {"enabled": False} if node.nat is None else node.nat.summary(),
        "allowFrom": None if allow is None else [str(s) for s in allow.rules],
        "notAllowed": 0 if allow is None else allow.dropped,
        "warnings": _warnings(peers, alive),
    }


def add_status_routes(app: web.Application, api: NodeApi) -> None:
    data = DashboardData(api)

    async def get_status(_: web.Request) -> web.Response:
        return web.json_response(status(data), headers={"Cache-Control": "no-store"})

    app.router.add_get(PATH, get_status)
