"""NAT traversal in running nodes over loopback: A and B only know a relay P; a small STUN
responder tells them their (loopback) address; traffic from A to B ends in a direct, punched
QUIC link. Plus the link's credentials both ways, and the API view."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from link_recorder import wait_for
from mycelium.api import start_servers
from mycelium.identity import node_subnet
from mycelium.links.endpoint import Endpoint
from mycelium.links.peer_manager import PeerType
from mycelium.nat import negotiation, stun, traversal
from mycelium.nat.candidates import Candidate, CandidateKind
from mycelium.nat.negotiation import Phase, Punch
from mycelium.node import Node, NodeConfig
from mycelium.wire.packet import encode_control
from mycelium.wire.tlv import Hello


class StunResponder(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]
        self.requests = 0

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        message = stun.decode(data).message
        self.requests += 1
        answer = stun.binding_success(message.transaction_id, addr[0], addr[1])
        self.transport.sendto(stun.encode(answer), addr)


async def stun_server() -> tuple[asyncio.DatagramTransport, StunResponder]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(StunResponder, local_addr=("::1", 0))  # type: ignore[return-value]


class Lab:
    a: Node
    b: Node
    relay: Node
    responder: StunResponder


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    transport, responder = await stun_server()
    servers = [("::1", transport.get_extra_info("sockname")[1])]
    lab = Lab()
    lab.responder = responder
    relay_config = NodeConfig.loopback()
    relay_config.hole_punching = False  # it answers no topic query, like a reference node
    lab.relay = Node(relay_config)
    await lab.relay.start()
    relay = [Endpoint("tcp", "::1", lab.relay.tcp_port)]
    nodes = []
    for _ in range(2):
        config = NodeConfig.loopback(relay)
        config.stun_servers = servers
        nodes.append(Node(config))
    # The lower key dials: name them so.
    lab.a, lab.b = sorted(nodes, key=lambda node: node.identity.public_key)
    for node in nodes:
        await node.start()
    subnet_b = node_subnet(lab.b.identity.public_key)
    # Routes are learned on demand (a route request, as traffic would send).
    lab.a.with_router(lambda router, now: router.request_route(lab.b.identity.address, now))
    await wait_for(lambda: lab.a.router.selected_entry(subnet_b) is not None)
    for node in nodes:
        assert node.nat is not None
        await wait_for(lambda n=node: n.nat.negotiator.local is not None)  # type: ignore[union-attr]
    try:
        yield lab
    finally:
        for node in (*nodes, lab.relay):
            await node.stop()
        transport.close()


def punched(node: Node) -> list:  # type: ignore[type-arg]
    return [p for p in node.peer_manager.peers() if p.kind is PeerType.HOLE_PUNCHED]


async def test_traffic_to_a_relayed_node_ends_in_a_punched_link(lab: Lab) -> None:
    a, b = lab.a, lab.b
    assert a.nat is not None and b.nat is not None
    assert lab.responder.requests >= 2
    local = a.nat.negotiator.local
    assert local is not None and local.candidates[-1].kind is CandidateKind.REFLEXIVE
    assert local.candidates[-1].address == ("::1", a.quic_port)
    subnet_b = node_subnet(b.identity.public_key)
    entry = a.router.selected_entry(subnet_b)
    assert entry is not None and entry.metric > 0  # through the relay

    assert a.dataplane.tun_destinations is not None
    a.dataplane.tun_destinations.add(b.identity.address)  # what the TUN path records
    await wait_for(lambda: bool(punched(a)) and bool(punched(b)), timeout=15)
    (on_a,), (on_b,) = punched(a), punched(b)
    assert on_a.endpoint == Endpoint("quic", "::1", b.quic_port)
    assert on_b.endpoint == Endpoint("quic", "::1", a.quic_port)
    # The route to B moves onto the punched link (B announces its own subnet: metric 0).
    await wait_for(lambda: (a.router.selected_entry(subnet_b) or entry).metric == 0)
    selected = a.router.selected_entry(subnet_b)
    assert selected is not None and selected.neighbour.id is on_a.link
    # Its cost started from the round trip the checks measured, not the default 1000.
    cost = a.router.link_cost(on_a.link)
    assert cost is not None and cost < 100
    # Messages still flow (now directly).
    assert a.messages is not None and b.messages is not None
    await a.messages.push(b.identity.address, b"direct", topic=b"t")
    received = await b.messages.pop(timeout=5)
    assert received is not None and received.data == b"direct"
    # More traffic changes nothing: the node is a neighbour now.
    a.dataplane.tun_destinations.add(b.identity.address)
    await asyncio.sleep(2.5)
    assert len(punched(a)) == 1

    # Idle for too long: closed, and traffic may start a new attempt at once.
    traversal.LINK_IDLE, idle = 0.5, traversal.LINK_IDLE
    try:
        await wait_for(lambda: not punched(a) and not punched(b), timeout=10)
    finally:
        traversal.LINK_IDLE = idle
    peer = a.nat.negotiator._peers[b.identity.public_key]
    assert peer.phase is Phase.IDLE and peer.not_before <= a.now()
    a.dataplane.tun_destinations.add(b.identity.address)
    await wait_for(lambda: bool(punched(a)) and bool(punched(b)), timeout=15)
    (on_a,) = punched(a)

    # The link dies: both sides forget it and back off before trying again.
    assert on_a.link is not None
    on_a.link.close()
    await wait_for(lambda: not punched(a) and not punched(b))
    peer = a.nat.negotiator._peers[b.identity.public_key]
    assert peer.phase is Phase.IDLE and peer.not_before > a.now() + 30


async def test_the_api_shows_the_mapping_candidates_and_links(lab: Lab) -> None:
    servers = await start_servers(lab.a, api_addr="127.0.0.1:0", jsonrpc_addr="127.0.0.1:0")
    host, port = servers.addresses["REST"]
    try:
        url = f"http://{host}:{port}/api/v1/pymycelium/nat"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            assert response.status == 200
            body = await response.json()
    finally:
        await servers.close()
    assert body["enabled"] is True
    assert body["publicAddresses"] == [f"[::1]:{lab.a.quic_port}"]
    assert body["natType"] == "unknown"  # one server cannot classify
    assert body["candidates"] == [{"kind": "reflexive", "address": f"[::1]:{lab.a.quic_port}"}]
    assert body["links"] == [] and body["nodes"] == []


async def test_a_punched_link_needs_the_right_secret_and_certificate(lab: Lab) -> None:
    a, b = lab.a, lab.b
    assert a.nat is not None and b.nat is not None and a._quic is not None
    # B expects A (listening side of a session), as after an exchange.
    secret = b"s" * 16
    session = b"x" * 8
    punch = Punch(
        a.identity.public_key,
        session,
        False,
        secret,
        b"t" * 16,
        a._quic.certificate_fingerprint,
        (Candidate(CandidateKind.REFLEXIVE, "::1", a.quic_port),),
    )
    b.nat.checks.start(punch, b.now())
    target = Endpoint("quic", "::1", b.quic_port)
    assert b._quic is not None
    right_pin = b._quic.certificate_fingerprint
    # A wrong certificate fingerprint: the dialler walks away before presenting anything.
    with pytest.raises(ConnectionError, match="another certificate"):
        await a._quic.dial(target, a, pin=b"0" * 32, token=secret)
    # The right certificate but a wrong secret: B closes the link.
    link = await a._quic.dial(target, a, pin=right_pin, token=b"wrong" * 3)
    link.start()
    await wait_for(lambda: b.nat.counters.auth_refused == 1)  # type: ignore[union-attr]
    await wait_for(lambda: link._closed)
    assert punched(a) == [] and punched(b) == []
    # No credentials at all (but a Hello, so that B takes the link on): closed in time.
    b.nat.checks.start(punch, b.now())
    traversal.AUTH_TIMEOUT, timeout = 0.3, traversal.AUTH_TIMEOUT
    try:
        link = await a._quic.dial(target, a, pin=right_pin)
        link.start()
        link.send(encode_control(Hello(1)))
        await wait_for(lambda: b.nat.counters.auth_refused == 2)  # type: ignore[union-attr]
    finally:
        traversal.AUTH_TIMEOUT = timeout
    await wait_for(lambda: link._closed)
    assert punched(b) == []


async def test_nodes_not_serving_the_topic_are_left_alone(lab: Lab) -> None:
    a, relay = lab.a, lab.relay
    assert a.nat is not None and relay.nat is None
    key = relay.identity.public_key
    a.nat.negotiator.traffic(key, a.now())  # as the scan would, were it not a neighbour
    a.nat._flush()
    assert a.nat.negotiator._peers[key].phase is Phase.QUERYING
    await wait_for(
        lambda: a.nat.negotiator._peers[key].support is negotiation.Support.NO,  # type: ignore[union-attr]
        timeout=negotiation.QUERY_ATTEMPTS * negotiation.QUERY_INTERVAL + 3,
    )
    assert relay.messages is not None and relay.messages.engine.inbox_size == 0
    assert a.nat.negotiator._peers[key].not_before > a.now() + 3000
