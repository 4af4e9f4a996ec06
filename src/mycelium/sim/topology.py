"""Network shapes for the simulator: generated (line, ring, grid, random) or read from JSON.

A topology is plain data: node names and undirected links with a one-way latency. Generated
latencies come from the seed, so a run is reproducible.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path


class TopologyError(ValueError):
    """A topology spec or file that cannot be used."""


@dataclass(frozen=True, slots=True)
class Link:
    a: str
    b: str
    latency: float  # one way, seconds
    jitter: float = 0.0
    loss: float = 0.0


@dataclass
class Topology:
    nodes: list[str]
    links: list[Link] = field(default_factory=list)

    def check(self) -> Topology:
        known = set(self.nodes)
        if len(known) != len(self.nodes):
            raise TopologyError("node names must be unique")
        seen: set[frozenset[str]] = set()
        for link in self.links:
            if link.a not in known or link.b not in known:
                raise TopologyError(f"link {link.a}-{link.b} names an unknown node")
            if link.a == link.b:
                raise TopologyError(f"link {link.a}-{link.b} loops back to its node")
            pair = frozenset((link.a, link.b))
            if pair in seen:
                raise TopologyError(f"link {link.a}-{link.b} given twice")
            seen.add(pair)
            if link.latency < 0 or link.jitter < 0 or not 0 <= link.loss < 1:
                raise TopologyError(f"link {link.a}-{link.b} has a negative latency or bad loss")
        return self


def _latency(rng: random.Random) -> float:
    return rng.uniform(0.001, 0.050)


def parse_spec(spec: str, rng: random.Random) -> Topology:
    """``line:N``, ``ring:N``, ``grid:WxH`` or ``random:N:DEGREE``."""
    kind, _, args = spec.partition(":")
    try:
        if kind in ("line", "ring"):
            n = int(args)
            if n < 2:
                raise TopologyError(f"{kind} needs at least 2 nodes")
            names = [str(i) for i in range(n)]
            pairs = [(i, i + 1) for i in range(n - 1)]
            if kind == "ring" and n > 2:
                pairs.append((n - 1, 0))
        elif kind == "grid":
            w, h = (int(x) for x in args.lower().split("x"))
            if w < 1 or h < 1 or w * h < 2:
                raise TopologyError("grid needs at least 2 nodes")
            names = [str(i) for i in range(w * h)]
            pairs = [(y * w + x, y * w + x + 1) for y in range(h) for x in range(w - 1)]
            pairs += [(y * w + x, (y + 1) * w + x) for y in range(h - 1) for x in range(w)]
        elif kind == "random":
            n_text, _, degree_text = args.partition(":")
            n, degree = int(n_text), float(degree_text or 4)
            if n < 2 or degree < 1:
                raise TopologyError("random needs at least 2 nodes and degree >= 1")
            names = [str(i) for i in range(n)]
            pairs = _random_connected(n, degree, rng)
        else:
            raise TopologyError(f"unknown topology {kind!r} (line, ring, grid, random)")
    except ValueError as exc:
        if isinstance(exc, TopologyError):
            raise
        raise TopologyError(f"bad topology spec {spec!r}: {exc}") from None
    links = [Link(names[a], names[b], _latency(rng)) for a, b in pairs]
    return Topology(names, links).check()


def _random_connected(n: int, degree: float, rng: random.Random) -> list[tuple[int, int]]:
    """A random spanning tree plus random extra links up to the mean degree."""
    order = list(range(n))
    rng.shuffle(order)
    pairs = {tuple(sorted((order[i], order[rng.randrange(i)]))) for i in range(1, n)}
    target = min(int(n * degree / 2), n * (n - 1) // 2)
    while len(pairs) < target:
        a, b = rng.randrange(n), rng.randrange(n)
        if a != b:
            pairs.add(tuple(sorted((a, b))))
    return sorted(pairs)  # type: ignore[arg-type]


def load_file(path: Path) -> Topology:
    """``{"nodes": [...], "links": [{"a", "b", "latency_ms", "jitter_ms"?, "loss"?}]}``."""
    try:
        data = json.loads(path.read_text())
        nodes = [str(n) for n in data["nodes"]]
        links = [
            Link(
                str(item["a"]),
                str(item["b"]),
                float(item.get("latency_ms", 10)) / 1000,
                float(item.get("jitter_ms", 0)) / 1000,
                float(item.get("loss", 0)),
            )
            for item in data.get("links", [])
        ]
    except OSError as exc:
        raise TopologyError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise TopologyError(f"bad topology file {path}: {exc!r}") from None
    return Topology(nodes, links).check()
