"""A big neighbourhood for a real node's API to report: 50 peers and 1,000 routes, put in place
of its peer table and route table, so every byte the page reads still comes through the real
REST handlers and facade."""

from __future__ import annotations

import math
import random
import time
from typing import Any

from mycelium.links.endpoint import Endpoint
from mycelium.links.peer_manager import PeerEntry, PeerType
from mycelium.node import Node
from mycelium.routing.router import RouteView
from mycelium.subnet import Subnet


class FakeLink:
    """Just what the API reads from a link; its byte counters grow at a rate that swings
    slowly around a mean, so graphs and sparklines have something to show."""

    static_cost = 0

    def __init__(self, index: int, endpoint: Endpoint, rng: random.Random) -> None:
        self.connection_id = f"TCP [::1]:{40000 + index} <-> {endpoint.socket_address}"
        self.cost = rng.choice([12, 25, 40, 80, 150, 320, 700])
        self._born = time.monotonic() - rng.uniform(60, 90_000)
        self._rx_rate = rng.choice([200, 2_000, 40_000, 900_000])
        self._tx_rate = self._rx_rate * rng.uniform(0.3, 1.5)
        self._period = rng.uniform(4, 12)
        self._phase = rng.uniform(0, 6.3)

    def _total(self, rate: float) -> int:
        # The integral of rate * (1 + 0.6 sin(t / period + phase)) since the link was born.
        t = time.monotonic() - self._born
        swing = math.cos(self._phase) - math.cos(t / self._period + self._phase)
        return int(rate * (t + 0.6 * self._period * swing))

    @property
    def rx_bytes(self) -> int:
        return self._total(self._rx_rate)

    @property
    def tx_bytes(self) -> int:
        return self._total(self._tx_rate)


def random_subnet(rng: random.Random) -> Subnet:
    return Subnet((0x04 << 120) | (rng.getrandbits(57) << 64), 64)


def populate(node: Node, peers: int = 50, routes: int = 1000, seed: int = 7) -> dict[str, Any]:
    """Replace the node's peers and routes with generated ones; what was generated (the route
    list is the node's own: change it and the node reports the change)."""
    rng = random.Random(seed)
    now = time.monotonic()
    entries: list[PeerEntry] = []
    links: list[FakeLink] = []
    for i in range(peers):
        proto = "quic" if i % 4 == 3 else "tcp"
        host = f"2001:db8:{i // 10:x}::{i + 1:x}" if i % 3 else f"198.51.100.{i + 1}"
        port = 9651
        if i % 5 == 4:  # some long names: a longer address and another port
            host, port = f"2001:db8:4d2:{i:x}:a00:27ff:fe4e:{i + 1:x}", 19651
        endpoint = Endpoint(proto, host, port)
        kind = PeerType.STATIC if i % 2 else PeerType.INBOUND
        if i % 7 == 5:  # some peers are down: no link
            entries.append(
                PeerEntry(endpoint, kind, discovered_at=now - 3600, connecting=i % 2 == 0)
            )
            continue
        link = FakeLink(i, endpoint, rng)
        links.append(link)
        entry = PeerEntry(endpoint, kind, discovered_at=now - 7200, last_connected=now - 600)
        entry.link = link  # type: ignore[assignment]
        entries.append(entry)
    views: list[RouteView] = []
    for link in links:  # each neighbour announces its own subnet, at metric 0
        views.append(RouteView(random_subnet(rng), link, 0, rng.randrange(100), True))  # type: ignore[arg-type]
    weights = [rng.paretovariate(1.2) for _ in links]
    while len(views) < routes:
        hop = rng.choices(links, weights)[0]
        metric = hop.cost + rng.randrange(20, 900)
        # One in seven is a fallback: another way to a subnet already selected.
        fallback = len(views) > len(links) and rng.random() < 1 / 7
        subnet = rng.choice(views[len(links) :]).subnet if fallback else random_subnet(rng)
        views.append(RouteView(subnet, hop, metric, rng.randrange(1000), not fallback))  # type: ignore[arg-type]
    costs = {id(link): link.cost for link in links}
    node.peer_manager.peers = lambda: list(entries)  # type: ignore[method-assign]
    node.router.routes = lambda: list(views)  # type: ignore[method-assign]
    node.router.link_cost = lambda neighbour: costs.get(id(neighbour))  # type: ignore[method-assign]
    return {
        "views": views,
        "links": links,
        "peers": [str(e.endpoint) for e in entries],
        "selected": [str(v.subnet) for v in views if v.selected],
        "fallback": [str(v.subnet) for v in views if not v.selected],
    }
