"""Who tries a direct link with whom, and when: the negotiation, sans-I/O (docs/nat.md).

Inputs are calls carrying ``now``; outputs are drained with ``take_*``: capability queries and
messages to send over the overlay, punches for the runtime to run, and ``next_deadline``.

Per remote node (by public key):

* Traffic to a node that is not our neighbour starts an attempt, at most once per backoff
  period. A node not known to speak this protocol is first asked (a message-bus topic query, up
  to three times a second apart); a node that never answers, such as a reference node, is left
  alone for an hour.
* The attempt is an OFFER (our candidates, certificate fingerprint and a fresh secret). The
  other side answers with its own (and starts punching at once) or declines. When both sides
  offer at the same time, the offer of the node with the lower public key stands.
* The node with the lower public key dials the QUIC connection; the other one listens.
* A failed attempt, a decline or a punched link that died young backs off: 1, 2, 4 ... minutes,
  at most an hour. A link that lived five minutes resets the count; one closed for being idle
  leaves no pause at all.
* At most 32 punched links at once: beyond, nothing is offered and offers are declined as busy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .candidates import Candidate, NatType
from .protocol import SECRET_SIZE, SESSION_SIZE, Decline, DeclineReason, Message, Offer

QUERY_INTERVAL = 1.0
QUERY_ATTEMPTS = 3
#: How long a node not answering a topic query is taken for one that does not support it.
UNSUPPORTED_RECHECK = 3600.0
#: How long an OFFER may wait for its ANSWER (the message bus retransmits meanwhile).
ANSWER_TIMEOUT = 15.0
#: Safety net over a punch: the runtime normally reports success or failure well before.
PUNCH_TIMEOUT = 40.0
BACKOFF_BASE = 60.0
BACKOFF_MAX = 3600.0
#: A punched link that lived this long was a success: the next attempt starts from scratch.
STABLE_LINK = 300.0
#: Offers accepted from one node at most this often; more are dropped unanswered.
OFFER_MIN_INTERVAL = 5.0
#: Attempts under way at once (both directions); offers beyond it are declined as busy.
MAX_SESSIONS = 16
#: Punched links at once; beyond, no attempt starts and offers are declined as busy.
MAX_LINKS = 32
#: Nodes remembered; the longest-idle ones without an attempt under way are forgotten first.
MAX_PEERS = 1024


class Support(Enum):
    UNKNOWN = "unknown"
    YES = "yes"
    NO = "no"


class Phase(Enum):
    IDLE = "idle"
    QUERYING = "querying"
    OFFERED = "offered"
    PUNCHING = "punching"
    LINKED = "linked"


@dataclass(frozen=True, slots=True)
class LocalInfo:
    """What we offer: refreshed by the runtime whenever gathering finds something new."""

    candidates: tuple[Candidate, ...]
    nat_type: NatType


@dataclass(frozen=True, slots=True)
class Punch:
    """An order for the runtime: punch towards ``peer`` for ``session``."""

    peer: bytes
    session: bytes
    #: We dial the QUIC connection (lower public key); otherwise we accept it.
    controlling: bool
    local_secret: bytes
    remote_secret: bytes
    remote_fingerprint: bytes
    remote_candidates: tuple[Candidate, ...]


@dataclass(slots=True)
class _Peer:
    key: bytes
    support: Support = Support.UNKNOWN
    phase: Phase = Phase.IDLE
    session: bytes = b""
    secret: bytes = b""
    #: When the current phase times out (or its next query is due).
    due: float = math.inf
    queries_sent: int = 0
    not_before: float = -math.inf
    failures: int = 0
    linked_at: float = 0.0
    last_offer_in: float = -math.inf
    last_active: float = 0.0
    remote_nat: NatType = NatType.UNKNOWN


class Negotiator:
    def __init__(
        self,
        own_key: bytes,
        fingerprint: Callable[[], bytes],
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``fingerprint``: our QUIC certificate's, asked for by the first offer or answer we
        make (the runtime makes the certificate then: 3 to 4 MB that a node which never
        punches does not pay)."""
        self.own_key = own_key
        self._fingerprint = fingerprint
        self._random = random_bytes
        self.local: LocalInfo | None = None
        self._peers: dict[bytes, _Peer] = {}
        self._queries: list[bytes] = []
        self._messages: list[tuple[bytes, Message]] = []
        self._punches: list[Punch] = []
        self._cancelled: list[bytes] = []
        self.offers_dropped = 0

    # --- inputs -------------------------------------------------------------------------------
    def set_local(self, local: LocalInfo) -> None:
        self.local = local

    def traffic(self, key: bytes, now: float) -> None:
        """We sent traffic to ``key``'s node, which is not our neighbour."""
        if key == self.own_key or self.local is None:
            return
        peer = self._peer(key, now)
        if peer is None or peer.phase is not Phase.IDLE or now < peer.not_before:
            return
        if self._count(Phase.LINKED) >= MAX_LINKS:
            return
        if peer.support is Support.NO:
            peer.support = Support.UNKNOWN  # its hour is up: ask again
        if peer.support is Support.YES:
            self._offer(peer, now)
        elif self._sessions() < MAX_SESSIONS:
            peer.phase = Phase.QUERYING
            peer.queries_sent = 1
            peer.due = now + QUERY_INTERVAL
            self._queries.append(key)

    def query_answered(self, key: bytes, now: float) -> None:
        peer = self._peers.get(key)
        if peer is None:
            return
        peer.support = Support.YES
        if peer.phase is Phase.QUERYING:
            self._offer(peer, now)

    def received(self, key: bytes, message: Message, now: float) -> None:
        """A message from ``key`` on the reserved topic (already decoded)."""
        if key == self.own_key:
            return
        if isinstance(message, Decline):
            self._on_decline(key, message, now)
        elif message.answer:
            self._on_answer(key, message, now)
        else:
            self._on_offer(key, message, now)

    def punch_failed(self, key: bytes, session: bytes, now: float) -> None:
        peer = self._peers.get(key)
        if peer is not None and peer.session == session and peer.phase is Phase.PUNCHING:
            self._fail(peer, now)

    def link_up(self, key: bytes, now: float) -> None:
        peer = self._peer(key, now, force=True)
        assert peer is not None
        peer.phase = Phase.LINKED
        peer.support = Support.YES
        peer.due = math.inf
        peer.linked_at = now

    def link_down(self, key: bytes, now: float, idle: bool = False) -> None:
        """The punched link is gone; ``idle``: we closed it for carrying no data (traffic
        coming back may start an attempt at once)."""
        peer = self._peers.get(key)
        if peer is None or peer.phase is not Phase.LINKED:
            return
        if idle:
            peer.failures = 0
            self._idle(peer, now)
            return
        if now - peer.linked_at >= STABLE_LINK:
            peer.failures = 0
        self._fail(peer, now)

    def tick(self, now: float) -> None:
        for peer in self._peers.values():
            if peer.due > now:
                continue
            if peer.phase is Phase.QUERYING:
                if peer.queries_sent < QUERY_ATTEMPTS:
                    peer.queries_sent += 1
                    peer.due = now + QUERY_INTERVAL
                    self._queries.append(peer.key)
                else:
                    peer.support = Support.NO
                    self._idle(peer, now + UNSUPPORTED_RECHECK)
            elif peer.phase in (Phase.OFFERED, Phase.PUNCHING):
                if peer.phase is Phase.PUNCHING:
                    self._cancelled.append(peer.session)
                self._fail(peer, now)

    # --- outputs ------------------------------------------------------------------------------
    def take_queries(self) -> list[bytes]:
        out, self._queries = self._queries, []
        return out

    def take_messages(self) -> list[tuple[bytes, Message]]:
        out, self._messages = self._messages, []
        return out

    def take_punches(self) -> list[Punch]:
        out, self._punches = self._punches, []
        return out

    def take_cancelled(self) -> list[bytes]:
        """Sessions given up on by the negotiation itself (the runtime stops punching them)."""
        out, self._cancelled = self._cancelled, []
        return out

    def next_deadline(self) -> float:
        return min((p.due for p in self._peers.values()), default=math.inf)

    def session_of(self, key: bytes) -> bytes | None:
        """The session being punched with ``key``'s node, if any."""
        peer = self._peers.get(key)
        return peer.session if peer is not None and peer.phase is Phase.PUNCHING else None

    def snapshot(self, now: float) -> list[dict[str, object]]:
        """Every remembered node, for the API."""
        return [
            {
                "publicKey": p.key.hex(),
                "state": p.phase.value,
                "supported": p.support.value,
                "failures": p.failures,
                "retryIn": None if p.not_before <= now else math.ceil(p.not_before - now),
                "natType": p.remote_nat.label,
            }
            for p in self._peers.values()
        ]

    # --- the exchange -------------------------------------------------------------------------
    def _offer(self, peer: _Peer, now: float) -> None:
        local = self.local
        if local is None or self._sessions() >= MAX_SESSIONS:
            self._idle(peer, now + BACKOFF_BASE)
            return
        peer.phase = Phase.OFFERED
        peer.session = self._random(SESSION_SIZE)
        peer.secret = self._random(SECRET_SIZE)
        peer.due = now + ANSWER_TIMEOUT
        self._messages.append((peer.key, self._own(peer, answer=False)))

    def _own(self, peer: _Peer, answer: bool) -> Offer:
        local = self.local
        assert local is not None
        return Offer(
            peer.session, local.nat_type, self._fingerprint(), peer.secret, local.candidates, answer
        )

    def _on_offer(self, key: bytes, offer: Offer, now: float) -> None:
        peer = self._peer(key, now, force=True)
        assert peer is not None
        if now - peer.last_offer_in < OFFER_MIN_INTERVAL:
            self.offers_dropped += 1
            return
        peer.last_offer_in = now
        peer.support = Support.YES
        peer.remote_nat = offer.nat_type
        local = self.local
        reason: DeclineReason | None = None
        if peer.phase is Phase.OFFERED and self.own_key < key:
            return  # both offered: ours stands, the other side answers it
        if peer.phase is Phase.LINKED:
            reason = DeclineReason.LINKED
        elif local is None or (
            peer.phase not in (Phase.OFFERED, Phase.PUNCHING)
            and (self._sessions() >= MAX_SESSIONS or self._count(Phase.LINKED) >= MAX_LINKS)
        ):
            reason = DeclineReason.BUSY
        elif local.nat_type is NatType.SYMMETRIC and offer.nat_type is NatType.SYMMETRIC:
            reason = DeclineReason.SYMMETRIC
        if reason is not None:
            self._messages.append((key, Decline(offer.session, reason)))
            if reason is DeclineReason.SYMMETRIC:
                self._idle(peer, now + BACKOFF_MAX)
            return
        if peer.phase is Phase.PUNCHING:
            self._cancelled.append(peer.session)  # the other side started over
        peer.session = offer.session
        peer.secret = self._random(SECRET_SIZE)
        self._messages.append((key, self._own(peer, answer=True)))
        self._punch(peer, offer, now)

    def _on_answer(self, key: bytes, answer: Offer, now: float) -> None:
        peer = self._peers.get(key)
        if peer is None or peer.phase is not Phase.OFFERED or answer.session != peer.session:
            return
        peer.remote_nat = answer.nat_type
        self._punch(peer, answer, now)

    def _on_decline(self, key: bytes, decline: Decline, now: float) -> None:
        peer = self._peers.get(key)
        if peer is None or peer.phase is not Phase.OFFERED or decline.session != peer.session:
            return
        if decline.reason is DeclineReason.SYMMETRIC:
            self._idle(peer, now + BACKOFF_MAX)
        else:
            self._idle(peer, now + BACKOFF_BASE)

    def _punch(self, peer: _Peer, remote: Offer, now: float) -> None:
        peer.phase = Phase.PUNCHING
        peer.due = now + PUNCH_TIMEOUT
        self._punches.append(
            Punch(
                peer.key,
                peer.session,
                self.own_key < peer.key,
                peer.secret,
                remote.secret,
                remote.fingerprint,
                remote.candidates,
            )
        )

    # --- bookkeeping --------------------------------------------------------------------------
    def _fail(self, peer: _Peer, now: float) -> None:
        peer.failures += 1
        delay = min(BACKOFF_BASE * 2 ** (peer.failures - 1), BACKOFF_MAX)
        self._idle(peer, now + delay)

    @staticmethod
    def _idle(peer: _Peer, not_before: float) -> None:
        peer.phase = Phase.IDLE
        peer.due = math.inf
        peer.session = peer.secret = b""
        peer.not_before = not_before

    def _sessions(self) -> int:
        return self._count(Phase.QUERYING, Phase.OFFERED, Phase.PUNCHING)

    def _count(self, *phases: Phase) -> int:
        return sum(1 for p in self._peers.values() if p.phase in phases)

    def _peer(self, key: bytes, now: float, force: bool = False) -> _Peer | None:
        """The node's entry, made if needed; None when the table is full of busy nodes
        (``force``: make room anyway, for nodes that reached us over the authenticated bus)."""
        peer = self._peers.get(key)
        if peer is None:
            if len(self._peers) >= MAX_PEERS and not self._evict() and not force:
                return None
            peer = self._peers[key] = _Peer(key)
        peer.last_active = now
        return peer

    def _evict(self) -> bool:
        idle = [p for p in self._peers.values() if p.phase is Phase.IDLE]
        if not idle:
            return False
        del self._peers[min(idle, key=lambda p: p.last_active).key]
        return True
