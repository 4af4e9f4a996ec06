"""NodeApi over a fake node: the reference's JSON shapes and the typed refusals, without I/O."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from mycelium.api.errors import BadRequest, Conflict, NotFound
from mycelium.api.facade import NodeApi
from mycelium.api.shapes import endpoint_json, message_info_json
from mycelium.dataplane.packet_stats import PacketStats
from mycelium.identity import Identity, node_subnet
from mycelium.links.endpoint import Endpoint
from mycelium.links.peer_manager import PeerEntry, PeerExists, PeerNotFound, PeerType
from mycelium.messages.engine import ChunkProgress, MessageStatus, State
from mycelium.routing import RouteView
from mycelium.subnet import Subnet


@dataclass
class FakeLink:
    connection_id: str = "tcp [::1]:1 <-> [::1]:2"


@dataclass
class FakeRouter:
    views: list[RouteView] = field(default_factory=list)
    queried: list[tuple[Subnet, float]] = field(default_factory=list)
    keys: dict[bytes, bytes] = field(default_factory=dict)

    def routes(self) -> list[RouteView]:
        return self.views

    def queried_subnets(self, now: float) -> list[tuple[Subnet, float]]:
        return self.queried

    def public_key_for(self, address: bytes) -> bytes | None:
        return self.keys.get(address)


class FakePeers:
    def __init__(self) -> None:
        self.entries: dict[Endpoint, PeerEntry] = {}

    def peers(self) -> list[PeerEntry]:
        return list(self.entries.values())

    def add_peer(self, endpoint: Endpoint) -> None:
        if endpoint in self.entries:
            raise PeerExists(endpoint)
        self.entries[endpoint] = PeerEntry(endpoint, PeerType.STATIC)

    def remove_peer(self, endpoint: Endpoint) -> None:
        if self.entries.pop(endpoint, None) is None:
            raise PeerNotFound(endpoint)


class FakeDataPlane:
    def __init__(self) -> None:
        self.packet_stats = PacketStats()


class FakeNode:
    def __init__(self) -> None:
        self.identity = Identity.from_secret(bytes(range(32)))
        self.router = FakeRouter()
        self.peer_manager = FakePeers()
        self.started_at = time.monotonic() - 100
        self.dataplane = FakeDataPlane()

    def now(self) -> float:
        return 1000.0


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


def test_info(node: FakeNode) -> None:
    info = NodeApi(node).info()  # type: ignore[arg-type]
    assert info["nodePubkey"] == node.identity.public_key.hex()
    assert info["nodeSubnet"] == str(node_subnet(node.identity.public_key))
    assert ipaddress.IPv6Address(info["nodeIp"]) in ipaddress.IPv6Network(info["nodeSubnet"])
    assert abs(info["nodeStartTime"] - (time.time() - 100)) < 5


def test_peers_add_list_remove(node: FakeNode) -> None:
    api = NodeApi(node)  # type: ignore[arg-type]
    api.add_peer("tcp://[2001:db8::1]:9651")
    with pytest.raises(Conflict):
        api.add_peer("tcp://[2001:db8::1]:9651")
    for bad in ("garbage", "tcp://[2001:db8::1]", "ftp://1.2.3.4:5"):
        with pytest.raises(BadRequest):
            api.add_peer(bad)
    (peer,) = api.peers()
    assert peer["endpoint"] == {"proto": "tcp", "addr": {"socket": "[2001:db8::1]:9651"}}
    assert (peer["type"], peer["connectionState"]) == ("static", "dead")
    assert peer["lastConnected"] is None and peer["txBytes"] == peer["rxBytes"] == 0
    api.remove_peer("tcp://[2001:db8::1]:9651")
    with pytest.raises(NotFound):
        api.remove_peer("tcp://[2001:db8::1]:9651")
    assert api.peers() == []


def test_vsock_endpoint_shape() -> None:
    assert endpoint_json(Endpoint.parse("vsock://3:9651")) == {
        "proto": "vsock",
        "addr": {"vsock": {"cid": 3, "port": 9651}},
    }


def test_routes_split_and_infinite_metric(node: FakeNode) -> None:
    a = Subnet.parse("400:1:2:3::/64")
    b = Subnet.parse("400:1:2:4::/64")
    node.router.views = [
        RouteView(a, FakeLink(), 7, 3, True),  # type: ignore[arg-type]
        RouteView(b, FakeLink(), 0xFFFF, 9, False),  # type: ignore[arg-type]
    ]
    api = NodeApi(node)  # type: ignore[arg-type]
    assert api.selected_routes() == [
        {"subnet": "400:1:2:3::/64", "nextHop": FakeLink.connection_id, "metric": 7, "seqno": 3}
    ]
    assert api.fallback_routes()[0]["metric"] == "infinite"


def test_queried_subnets_expiration_is_a_string_of_seconds(node: FakeNode) -> None:
    node.router.queried = [(Subnet.parse("400:9::/64"), 4.7)]
    assert NodeApi(node).queried_subnets() == [  # type: ignore[arg-type]
        {"subnet": "400:9::/64", "expiration": "4"}
    ]


def test_public_key_lookup(node: FakeNode) -> None:
    other = Identity.from_secret(bytes([9] * 32))
    address = ipaddress.IPv6Address(other.address_text)
    node.router.keys[address.packed] = other.public_key
    api = NodeApi(node)  # type: ignore[arg-type]
    assert api.public_key(other.address_text) == other.public_key.hex()
    for unknown in ("400::1", "10.0.0.1"):
        with pytest.raises(NotFound):
            api.public_key(unknown)
    with pytest.raises(BadRequest):
        api.public_key("not-an-ip")


def test_packet_statistics_shape(node: FakeNode) -> None:
    api = NodeApi(node)  # type: ignore[arg-type]
    assert api.packet_statistics() == {"bySource": [], "byDestination": []}
    a, b = bytes.fromhex("04" + "11" * 15), bytes.fromhex("05" + "22" * 15)
    node.dataplane.packet_stats.record(a, b, 1, 100)
    node.dataplane.packet_stats.record(a, b, 1, 50)
    stats: dict[str, Any] = api.packet_statistics()
    assert stats == {
        "bySource": [
            {"ip": "411:1111:1111:1111:1111:1111:1111:1111", "packetCount": 2, "byteCount": 150}
        ],
        "byDestination": [
            {"ip": "522:2222:2222:2222:2222:2222:2222:2222", "packetCount": 2, "byteCount": 150}
        ],
    }


def test_message_info_shape() -> None:
    dst = bytes.fromhex("0514d8f2e497c1d2e3c99e4094d5d9f0")
    sending = MessageStatus(dst, State.IN_PROGRESS, ChunkProgress(1, 2, 3), 1e9 + 0.7, 1e9 + 300, 9)
    assert message_info_json(sending) == {
        "dst": "514:d8f2:e497:c1d2:e3c9:9e40:94d5:d9f0",
        "state": {"sending": {"pending": 1, "sent": 2, "acked": 3}},
        "created": 1_000_000_000,
        "deadline": 1_000_000_300,
        "msgLen": 9,
    }
    read = MessageStatus(dst, State.READ, None, 5.0, 6.0, 0)
    assert message_info_json(read)["state"] == "read"
