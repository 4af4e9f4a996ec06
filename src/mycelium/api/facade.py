"""What the REST and JSON-RPC servers ask of a node, in the reference's JSON shapes.

Both servers call this one class (and its ``messages`` part), so a rule or a field name lives in
exactly one place; they differ only in how they carry values and errors.
"""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING, Any

from ..identity import node_subnet
from ..links.endpoint import Endpoint, EndpointError
from ..links.peer_manager import PeerExists, PeerNotFound
from ..proxy import check_target
from ..socket_address import parse_socket_address, socket_text
from .errors import BadRequest, Conflict, NotFound
from .messages import MessageApi
from .shapes import packet_stats_json, peer_json, route_json

if TYPE_CHECKING:
    from ..node import Node


class NodeApi:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.messages = MessageApi(node)
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
        return [peer_json(entry, now) for entry in self.node.peer_manager.peers()]

    @staticmethod
    def _endpoint(text: object) -> Endpoint:
        if not isinstance(text, str):
            raise BadRequest("an endpoint is a string such as tcp://[2001:db8::1]:9651")
        try:
            return Endpoint.parse(text)
        except EndpointError as exc:
            raise BadRequest(str(exc)) from None

    def add_peer(self, text: object) -> None:
        endpoint = self._endpoint(text)
        try:
            self.node.peer_manager.add_peer(endpoint)
        except PeerExists:
            raise Conflict("A peer identified by that endpoint already exists") from None
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def remove_peer(self, text: object) -> None:
        endpoint = self._endpoint(text)
        try:
            self.node.peer_manager.remove_peer(endpoint)
        except PeerNotFound:
            raise NotFound("A peer identified by that endpoint does not exist") from None

    # --- routes -----------------------------------------------------------------------------
    def _routes(self, selected: bool) -> list[dict[str, Any]]:
        return [route_json(view) for view in self.node.router.routes() if view.selected is selected]

    def selected_routes(self) -> list[dict[str, Any]]:
        return self._routes(True)

    def fallback_routes(self) -> list[dict[str, Any]]:
        return self._routes(False)

    def queried_subnets(self) -> list[dict[str, Any]]:
        return [
            {"subnet": str(subnet), "expiration": str(int(left))}
            for subnet, left in self.node.router.queried_subnets(self.node.now())
        ]

    def public_key(self, ip: object) -> str:
        """The key of the node owning ``ip``; NotFound without a route (or for IPv4, which the
        reference takes but no node has)."""
        try:
            if not isinstance(ip, str):
                raise ValueError
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise BadRequest(f"{ip!r} is not an IP address") from None
        key = None if address.version == 4 else self.node.router.public_key_for(address.packed)
        if key is None:
            raise NotFound()
        return key.hex()

    def packet_statistics(self) -> dict[str, Any]:
        return packet_stats_json(*self.node.dataplane.packet_stats.snapshot())

    # --- proxy ------------------------------------------------------------------------------
    def proxies(self) -> list[str]:
        return self.node.proxy.valid()

    async def connect_proxy(self, remote: object) -> str:
        """Forward to ``remote`` (an overlay socket address) or, for None, to the first valid
        discovered proxy. BadRequest for a malformed address; ``ProxyTargetRefused`` for one
        outside the overlay (docs/api-security.md §5); ``ProxyError`` when nothing answers or the
        local port cannot be bound."""
        target = None
        if remote is not None:
            try:
                host, port = parse_socket_address(remote)
            except ValueError as exc:
                raise BadRequest(f"remote must be an ip:port socket address: {exc}") from None
            check_target(host)
            target = socket_text(host, port)
        return await self.node.proxy.connect(target)

    async def disconnect_proxy(self) -> None:
        await self.node.proxy.disconnect()

    def start_proxy_probe(self) -> None:
        self.node.proxy.start_probing()

    def stop_proxy_probe(self) -> None:
        self.node.proxy.stop_probing()

    # --- pymycelium extensions --------------------------------------------------------------
    def nat(self) -> dict[str, Any]:
        """NAT traversal's view (docs/nat.md): our public mapping, candidates, attempts."""
        nat = self.node.nat
        return {"enabled": False} if nat is None else nat.status()
