"""What the REST and JSON-RPC servers ask of a node, in the reference's JSON shapes.

Both servers call this one class, so a field name or a rule lives in exactly one place.
"""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING, Any

from ..identity import node_subnet
from ..links.endpoint import Endpoint, EndpointError
from ..links.peer_manager import PeerEntry, PeerExists, PeerNotFound
from ..wire.tlv import INFINITY

if TYPE_CHECKING:
    from ..node import Node


class BadRequest(ValueError):
    """The request names something malformed (an endpoint, an IP)."""


class Conflict(Exception):
    """The thing to add already exists."""


class NotFound(Exception):
    """The thing asked for does not exist."""


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    """``{"proto": "tcp", "addr": {"socket": "[::1]:9651"}}``, the reference's shape since 0.7.6."""
    if endpoint.proto == "vsock":
        return {
            "proto": "vsock",
            "addr": {"vsock": {"cid": int(endpoint.host), "port": endpoint.port}},
        }
    return {"proto": endpoint.proto, "addr": {"socket": endpoint.socket_address}}


def _metric(value: int) -> int | str:
    return "infinite" if value == INFINITY else value


class NodeApi:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._start_time = int(time.time() - (time.monotonic() - node.started_at))

    # --- admin ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        identity = self.node.identity
        return {
            "nodeSubnet": str(node_subnet(identity.public_key)),
            "nodeIp": identity.address_text,
            "nodePubkey": identity.public_key.hex(),
            "nodeStartTime": self._start_time,
        }

    # --- peers ------------------------------------------------------------------------------
    def peers(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [self._peer_json(entry, now) for entry in self.node.peer_manager.peers()]

    @staticmethod
    def _peer_json(entry: PeerEntry, now: float) -> dict[str, Any]:
        return {
            "endpoint": endpoint_json(entry.endpoint),
            "type": entry.kind.value,
            "connectionState": entry.state.value,
            "txBytes": entry.tx_bytes,
            "rxBytes": entry.rx_bytes,
            "discovered": int(now - entry.discovered_at),
            "lastConnected": (
                None if entry.last_connected is None else int(now - entry.last_connected)
            ),
        }

    @staticmethod
    def parse_endpoint(text: str) -> Endpoint:
        try:
            return Endpoint.parse(text)
        except EndpointError as exc:
            raise BadRequest(str(exc)) from None

    def add_peer(self, text: str) -> None:
        endpoint = self.parse_endpoint(text)
        try:
            self.node.peer_manager.add_peer(endpoint)
        except PeerExists:
            raise Conflict("A peer identified by that endpoint already exists") from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def remove_peer(self, text: str) -> None:
        endpoint = self.parse_endpoint(text)
        try:
            self.node.peer_manager.remove_peer(endpoint)
        except PeerNotFound:
            raise NotFound("A peer identified by that endpoint does not exist") from None

    # --- routes -----------------------------------------------------------------------------
    def _routes(self, selected: bool) -> list[dict[str, Any]]:
        return [
            {
                "subnet": str(view.subnet),
                "nextHop": getattr(view.neighbour, "connection_id", str(view.neighbour)),
                "metric": _metric(view.metric),
                "seqno": view.seqno,
            }
            for view in self.node.router.routes()
            if view.selected is selected
        ]

    def selected_routes(self) -> list[dict[str, Any]]:
        return self._routes(True)

    def fallback_routes(self) -> list[dict[str, Any]]:
        return self._routes(False)

    def queried_subnets(self) -> list[dict[str, Any]]:
        return [
            {"subnet": str(subnet), "expiration": str(int(left))}
            for subnet, left in self.node.router.queried_subnets(self.node.now())
        ]

    def public_key(self, ip: str) -> str:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise BadRequest(f"{ip!r} is not an IP address") from None
        if address.version == 4:
            # The reference takes any IP address; no IPv4 address has a key.
            raise NotFound("no route to that address")
        key = self.node.router.public_key_for(address.packed)
        if key is None:
            raise NotFound("no route to that address")
        return key.hex()

    # --- proxy ------------------------------------------------------------------------------
    def proxies(self) -> list[str]:
        return self.node.proxy.valid()

    async def connect_proxy(self, remote: str | None) -> str:
        """Raises ``ProxyError`` when nothing answers or the local port cannot be bound."""
        return await self.node.proxy.connect(remote)

    async def disconnect_proxy(self) -> None:
        await self.node.proxy.disconnect()

    def start_proxy_probe(self) -> None:
        self.node.proxy.start_probing()

    def stop_proxy_probe(self) -> None:
        self.node.proxy.stop_probing()

    def packet_statistics(self) -> dict[str, Any]:
        return self.node.dataplane.packet_stats.snapshot()
