"""Per-address decisions the data plane keeps between packets (docs/wire.md §5.6).

What the router and the key cache answered for a destination (its link and a cipher sealing
to it), a destination we relay to (its link) or a source (a cipher opening its packets and its
replay window), kept while the route table's version holds and for ``KEEP_SECONDS`` at most,
so that a lone packet (a ping, an ACK) costs what a packet inside a batch does, and a relay
asks the router once per destination.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Generic, TypeVar

from ..crypto import KeyCache
from ..routing.decisions import N
from .ciphers import Opener, Sealer
from .replay import Window

#: How long kept decisions are trusted: the router must still see each destination now and
#: then, to refresh a route about to expire (it asks for a fresh one once under 15 s remain,
#: routing/constants.py ``ROUTE_ALMOST_EXPIRED``, so it gets at least two looks at it in time).
#: Longer than the interval of a plain ``ping`` (1 s): with one second, every such ping took
#: the slow path on both nodes, 0.13 ms more round trip than kept decisions.
KEEP_SECONDS: Final = 5.0
#: At most this many of each kind are kept.
KEEP_MAX: Final = 1024

_V = TypeVar("_V")


class KeptDecisions(Generic[N]):
    __slots__ = ("_until", "_version", "hops", "openers", "opens", "paths", "sealers")

    def __init__(self) -> None:
        #: Destination address -> (the link of its selected route, the cipher sealing to it).
        self.paths: dict[bytes, tuple[N, Sealer]] = {}
        #: Destination address of packets we relay -> the link of its selected route.
        self.hops: dict[bytes, N] = {}
        #: Source address -> (the cipher opening its packets, its /64's replay window).
        self.opens: dict[bytes, tuple[Opener, Window]] = {}
        #: Remote node's public key -> the cipher sealing to it, and the one opening its
        #: packets. These outlive the route table's changes and ``KEEP_SECONDS``: a cipher
        #: depends on the key alone, and making one costs 40-70 µs on a CPU back from idle.
        self.sealers: dict[bytes, Sealer] = {}
        self.openers: dict[bytes, Opener] = {}
        self._version = -1
        self._until = 0.0

    def check(self, version: int, now: float) -> None:
        """Forget everything once the route table changed or the decisions aged."""
        if version != self._version or now >= self._until:
            self.paths.clear()
            self.hops.clear()
            self.opens.clear()
            self._version = version
            self._until = now + KEEP_SECONDS

    def keep_path(self, dst: bytes, neighbour: N, sealer: Sealer) -> None:
        if len(self.paths) < KEEP_MAX:
            self.paths[dst] = (neighbour, sealer)

    def keep_hop(self, dst: bytes, neighbour: N) -> None:
        if len(self.hops) < KEEP_MAX:
            self.hops[dst] = neighbour

    def sealer(self, public_key: bytes, keys: KeyCache, fresh_iv: Callable[[], bytes]) -> Sealer:
        """The sealer to ``public_key``'s node, made with a fresh IV the first time (raises
        ``CryptoError`` for a key no exchange can use)."""
        sealer = self.sealers.get(public_key)
        if sealer is None:
            sealer = Sealer(keys.get(public_key).raw, fresh_iv())
            _put_bounded(self.sealers, public_key, sealer)
        return sealer

    def keep_opener(self, public_key: bytes, opener: Opener) -> None:
        _put_bounded(self.openers, public_key, opener)

    def keep_open(self, src: bytes, opener: Opener, window: Window) -> None:
        """Keep a source with the opener that just opened its packet."""
        if len(self.opens) < KEEP_MAX:
            self.opens[src] = (opener, window)


def _put_bounded(kept: dict[bytes, _V], key: bytes, value: _V) -> None:
    """Keep ``value``; at ``KEEP_MAX`` entries the one kept longest goes first."""
    if len(kept) >= KEEP_MAX:
        del kept[next(iter(kept))]
    kept[key] = value
