"""A node with the services the command line can switch on around it: the REST, JSON-RPC and
metrics APIs, the DNS forwarder and the CDN gateway.

``async with Daemon(settings) as daemon:`` starts them in the reference's order (a gateway or DNS
port that cannot be bound stops the start) and stops them within the 2 s a service manager
allows.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .heap import tune_heap
from .identity import default_key_path
from .nat.servers import stun_servers
from .node import Node, NodeConfig
from .routing.limits import RouterLimits
from .settings import Settings, SettingsError

if TYPE_CHECKING:
    from .api import Servers
    from .cdn.gateway import Gateway
    from .dns.resolver import DnsForwarder

log = logging.getLogger("mycelium")


def node_config(settings: Settings, private: bool = False) -> NodeConfig:
    """The node's configuration; ``private``: run as ``mycelium-private`` (TLS-PSK, no QUIC).

    Reads the files the settings name (network key, topic rules); SettingsError says which
    one is unusable and why.
    """
    from .links.private import PrivateNetwork, PrivateNetworkError

    network = None
    name, key_file = settings.network_name, settings.network_key_file
    if private:
        if name is None or key_file is None:
            raise SettingsError("--network-name and --network-key-file are both required")
        try:
            network = PrivateNetwork.load(name, key_file)
        except PrivateNetworkError as exc:
            raise SettingsError(str(exc)) from None
    elif name is not None or key_file is not None:
        raise SettingsError("private networks are run with `mycelium-private`")

    topic_config = None
    if settings.topic_config is not None:
        from .messages.topics import load_topic_config

        path = settings.topic_config
        try:
            topic_config = load_topic_config(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise SettingsError(f"topic config {path}: {exc}") from None

    peers = list(settings.peers)
    if settings.public_peers:
        from .public_nodes import endpoints

        peers += [e for e in endpoints() if e not in peers]
    return NodeConfig(
        key_file=settings.key_file or default_key_path(),
        peers=peers,
        allow_from=list(settings.allow_from),
        tcp_listen_port=settings.tcp_listen_port,
        quic_listen_port=settings.quic_listen_port,
        disable_quic=settings.disable_quic or network is not None,
        private=network,
        topic_config=topic_config,
        no_tun=settings.no_tun,
        tun_name=settings.tun_name,
        firewall_mark=settings.firewall_mark,
        disable_peer_discovery=settings.disable_peer_discovery,
        peer_discovery_port=settings.peer_discovery_port,
        peer_discovery_interfaces=list(settings.peer_discovery_interfaces),
        vsock_listen_port=settings.vsock_listen_port,
        max_inbound=settings.max_inbound,
        max_inbound_per_source=settings.max_inbound_per_source,
        router_limits=RouterLimits(
            max_routes=settings.max_routes,
            max_routes_per_neighbour=settings.max_routes_per_peer,
        ),
        hole_punching=not settings.disable_hole_punching,
        stun_servers=stun_servers(settings.stun_servers),
    )


class Daemon:
    def __init__(self, settings: Settings, config: NodeConfig) -> None:
        self.settings = settings
        self.node = Node(config)
        self.servers: Servers | None = None
        self.cdn: Gateway | None = None
        self.dns: DnsForwarder | None = None

    async def __aenter__(self) -> Daemon:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _start(self) -> None:
        settings = self.settings
        node = self.node
        # The process is ours (an embedding application keeps its own allocator settings).
        tune_heap()
        if settings.cdn_cache is not None:
            from .cdn.gateway import Gateway

            self.cdn = Gateway(Path(settings.cdn_cache))
            await self.cdn.serve()
        if settings.enable_dns:
            from .dns.resolver import DnsForwarder
            from .dns.upstream import PUBLIC_NODES, choose

            def chooser(candidates: Sequence[bytes]) -> bytes | None:
                return node.with_router(lambda router, now: choose(router, candidates, now))

            upstreams = [a.packed for a in settings.dns_upstream]
            self.dns = DnsForwarder(chooser, candidates=upstreams or PUBLIC_NODES)
            await self.dns.bind()
        await node.start()
        if self.dns is not None:
            self.dns.start()
        self.servers = await _start_api(node, settings)
        # What start-up made lives as long as the process: out of the collector's sight, a
        # full collection no longer stalls the loop for ~0.1 s (bench/api_limits.py).
        gc.freeze()

    async def close(self) -> None:
        """Stop everything; API clients still long-polling, or links slow to close, are cut off
        rather than delaying the exit."""
        servers, cdn, dns = self.servers, self.cdn, self.dns
        self.servers = self.cdn = self.dns = None
        for what, closing, limit in (
            ("API servers", servers.close() if servers is not None else None, 1.0),
            ("CDN gateway", cdn.close() if cdn is not None else None, 0.2),
            ("DNS resolver", dns.close() if dns is not None else None, 0.2),
            ("node", self.node.stop(), 0.8),
        ):
            if closing is None:
                continue
            try:
                await asyncio.wait_for(closing, limit)
            except TimeoutError:
                log.warning("%s did not stop within %.1f s; exiting anyway", what, limit)


async def _start_api(node: Node, settings: Settings) -> Servers | None:
    try:
        from .api import start_servers
    except ImportError:
        return None
    return await start_servers(
        node,
        api_addr=settings.api_addr,
        jsonrpc_addr=settings.jsonrpc_addr,
        metrics_addr=settings.metrics_api_address,
    )
