"""What a node needs to run (``NodeConfig``): the settings model's runtime view, also the entry
point for embedding (docs/embedding.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .allow import parse_rule
from .identity import Identity, default_key_path
from .links.endpoint import Endpoint
from .links.private import PrivateNetwork
from .proxy import SOCKS_PORT
from .routing.limits import RouterLimits
from .subnet import Subnet

if TYPE_CHECKING:
    from .messages.topics import TopicConfig


@dataclass
class NodeConfig:
    """What a node needs to run; strings are accepted where a path, endpoint or rule is meant
    (``NodeConfig(key_file="node.key", peers=["tcp://192.0.2.1:9651"])``)."""

    key_file: Path | str = field(default_factory=default_key_path)
    peers: Sequence[Endpoint | str] = field(default_factory=list)
    tcp_listen_port: int = 9651
    quic_listen_port: int = 9651
    disable_quic: bool = False
    listen_host: str = "::"
    no_tun: bool = False
    tun_name: str = "mycelium"
    firewall_mark: int | None = None
    disable_peer_discovery: bool = False
    peer_discovery_port: int = 9650
    peer_discovery_interfaces: list[str] = field(default_factory=list)
    #: Accept vsock links on this port (any local CID); None: no vsock listener.
    vsock_listen_port: int | None = None
    #: Topic rules of the message bus (``--topic-config``); None accepts every topic.
    topic_config: TopicConfig | None = None
    #: Private network membership: TLS-PSK on every TCP connection, no QUIC.
    private: PrivateNetwork | None = None
    #: Supply an identity directly (embedding, tests) instead of reading ``key_file``.
    identity: Identity | None = None
    #: Inbound connections per listener and per source (None: links/admission.py's defaults).
    max_inbound: int | None = None
    max_inbound_per_source: int | None = None
    #: What the router accepts from its neighbours (routing/limits.py).
    router_limits: RouterLimits = field(default_factory=RouterLimits)
    #: Where a proxy ``connect`` listens (the reference's fixed ``[::]:1080``).
    proxy_listen: tuple[str, int] = ("::", SOCKS_PORT)
    #: Only these sources may reach our TUN and message bus (``--allow-from``: public keys,
    #: overlay addresses or subnets); empty allows everyone.
    allow_from: Sequence[Subnet | str] = field(default_factory=list)
    #: Direct QUIC links to nodes behind NATs, negotiated over the overlay (docs/nat.md).
    hole_punching: bool = True
    #: STUN servers (host, port) that tell us our public address; none by default.
    stun_servers: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Parse what was given as text now, so that a bad value fails here, clearly."""
        self.key_file = Path(self.key_file)
        self.peers = self.endpoints
        self.allow_from = self.allow_rules

    @property
    def endpoints(self) -> list[Endpoint]:
        """``peers``, parsed."""
        return [p if isinstance(p, Endpoint) else Endpoint.parse(p) for p in self.peers]

    @property
    def allow_rules(self) -> list[Subnet]:
        """``allow_from``, parsed."""
        return [r if isinstance(r, Subnet) else parse_rule(r) for r in self.allow_from]

    @classmethod
    def loopback(cls, peers: Sequence[Endpoint | str] = ()) -> NodeConfig:
        """A node for in-process networks (tests, benchmarks, embedding): a fresh identity, no
        TUN, no discovery, listening on ``::1`` ports the kernel picks."""
        return cls(
            identity=Identity.generate(),
            peers=list(peers),
            tcp_listen_port=0,
            quic_listen_port=0,
            listen_host="::1",
            proxy_listen=("::1", 0),
            no_tun=True,
            disable_peer_discovery=True,
        )
