"""Our public address, learned from STUN servers; sans-I/O (takes ``now``, returns datagrams).

A round sends one Binding request to every configured server from the node's QUIC socket (the
runtime sends what ``take_datagrams`` returns) and retransmits each after 0.5, 1 and 2 s; a
server that has not answered 4 s after the last try is given up on for the round. When every
server answered or was given up on, the round's result classifies the mapping (two servers that
saw the same public address and port: endpoint-independent; different ones: symmetric), and the
next round is due two minutes later (30 s when nobody answered, or nobody was asked).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import stun
from .candidates import NatType, normal_host

#: Delays between the transmissions of one request, then how long to wait after the last.
RETRANSMIT_DELAYS = (0.5, 1.0, 2.0)
FINAL_WAIT = 4.0
REFRESH_INTERVAL = 120.0
RETRY_INTERVAL = 30.0

Address = tuple[str, int]


@dataclass(slots=True)
class _Transaction:
    server: Address
    request: bytes
    sent: int = 1
    due: float = 0.0
    answer: Address | None = None
    done: bool = False


@dataclass(frozen=True, slots=True)
class MappingResult:
    """What one round found."""

    #: server -> the public address it saw (None: no answer).
    answers: dict[Address, Address | None]
    nat_type: NatType
    finished_at: float
    #: Our public addresses, one per distinct answer, in server order.
    public: tuple[Address, ...] = field(default=())


def classify(answers: Iterable[Address | None], local: Iterable[Address] = ()) -> NatType:
    """RFC 4787's mapping behaviour from what servers saw (per address family)."""
    seen = [a for a in answers if a is not None]
    if any(a in set(local) for a in seen):
        return NatType.OPEN
    verdict = NatType.UNKNOWN
    for family in (True, False):
        mapped = {a for a in seen if (":" in a[0]) is family}
        same_family = [a for a in seen if (":" in a[0]) is family]
        if len(mapped) > 1:
            return NatType.SYMMETRIC
        if len(same_family) > 1:
            verdict = NatType.ENDPOINT_INDEPENDENT
    return verdict


class MappingProbe:
    """Rounds of STUN Binding requests to the configured servers."""

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random_bytes
        self._transactions: dict[bytes, _Transaction] = {}
        self._datagrams: list[tuple[bytes, Address]] = []
        self._local: tuple[Address, ...] = ()
        self._results: list[MappingResult] = []
        self.result: MappingResult | None = None
        self.next_round: float = 0.0
        self.rounds = 0
        self.unmatched = 0

    @property
    def running(self) -> bool:
        return bool(self._transactions)

    def start_round(
        self, servers: Iterable[Address], now: float, local: Iterable[Address] = ()
    ) -> None:
        """Ask every server (literal addresses; the runtime resolves names) once more."""
        self._transactions.clear()
        self._local = tuple(local)
        for host, port in dict.fromkeys((normal_host(h), p) for h, p in servers):
            txid = self._random(stun.TRANSACTION_ID_SIZE)
            request = stun.encode(stun.binding_request(txid))
            self._transactions[txid] = _Transaction(
                (host, port), request, due=now + RETRANSMIT_DELAYS[0]
            )
            self._datagrams.append((request, (host, port)))
        self.next_round = math.inf
        if not self._transactions:
            self._finish(now)

    def response(self, decoded: stun.Decoded, source: Address, now: float) -> bool:
        """A STUN response arrived; True if it answered one of our requests."""
        message = decoded.message
        transaction = self._transactions.get(message.transaction_id)
        if transaction is None or transaction.done:
            return False
        if (normal_host(source[0]), source[1]) != transaction.server:
            self.unmatched += 1
            return True  # ours, but from elsewhere: not trusted, the request stays open
        if message.cls is stun.StunClass.SUCCESS:
            found = stun.mapped_address(message)
            if found is not None:
                transaction.answer = (normal_host(found[0]), found[1])
        transaction.done = True
        self._finish_if_done(now)
        return True

    def tick(self, now: float) -> None:
        if not self._transactions:
            return
        for transaction in self._transactions.values():
            if transaction.done or transaction.due > now:
                continue
            if transaction.sent > len(RETRANSMIT_DELAYS):
                transaction.done = True
                continue
            self._datagrams.append((transaction.request, transaction.server))
            transaction.sent += 1
            wait = (
                RETRANSMIT_DELAYS[transaction.sent - 1]
                if transaction.sent <= len(RETRANSMIT_DELAYS)
                else FINAL_WAIT
            )
            transaction.due = now + wait
        self._finish_if_done(now)

    def _finish_if_done(self, now: float) -> None:
        if all(t.done for t in self._transactions.values()):
            self._finish(now)

    def _finish(self, now: float) -> None:
        answers = {t.server: t.answer for t in self._transactions.values()}
        public = tuple(dict.fromkeys(a for a in answers.values() if a is not None))
        result = MappingResult(answers, classify(answers.values(), self._local), now, public)
        self._transactions.clear()
        self.result = result
        self._results.append(result)
        self.rounds += 1
        self.next_round = now + (REFRESH_INTERVAL if public else RETRY_INTERVAL)

    def next_deadline(self) -> float:
        pending = [t.due for t in self._transactions.values() if not t.done]
        return min(pending, default=self.next_round)

    def take_datagrams(self) -> list[tuple[bytes, Address]]:
        out, self._datagrams = self._datagrams, []
        return out

    def take_results(self) -> list[MappingResult]:
        """Rounds finished since the last call."""
        out, self._results = self._results, []
        return out
