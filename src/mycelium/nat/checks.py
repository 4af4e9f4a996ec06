"""Connectivity checks for a punch, sans-I/O: which address of the other node answers us.

Both sides send STUN Binding requests from their QUIC socket to every candidate of the other,
one every 50 ms in turn, for 10 s. Those first packets give each NAT a mapping towards the other
side, so that the other side's packets, and then the QUIC Initial, are let in. A request names
the session in USERNAME and is signed (MESSAGE-INTEGRITY-SHA256) with the receiver's secret from
the exchange; the answer is signed with the answerer's secret. A request from an address we did
not know is answered and that address checked too (RFC 8445's peer-reflexive candidates).

The first answered check makes a valid pair. The dialling side then asks the runtime to open
QUIC to that address (``take_dials``) and stops checking; the listening side slows to one check
every half second and waits for the connection. A side that finds nothing in time reports the
session as failed (``take_failures``).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from . import stun
from .candidates import normal_host
from .negotiation import Punch

CHECK_INTERVAL = 0.05
#: Checks of the listening side once a pair works (its NAT must stay open for the dial).
SLOW_INTERVAL = 0.5
CHECK_WINDOW = 10.0
#: How long after its checks the listening side waits for the dial: the QUIC handshake's own
#: timeout, plus the dialler's later start (one trip over the overlay) and a margin.
LISTEN_GRACE = 15.0
#: Candidates plus learned peer-reflexive addresses, per session.
MAX_ADDRESSES = 12
#: Open transactions remembered per session (older answers are ignored).
MAX_OPEN = 64

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Dial:
    """Open the QUIC connection of ``session`` to ``address``: the server must present the
    certificate with ``fingerprint``; we then present ``secret``."""

    peer: bytes
    session: bytes
    address: Address
    fingerprint: bytes
    secret: bytes
    rtt: float | None


@dataclass(slots=True)
class _Session:
    punch: Punch
    username: bytes
    addresses: list[Address]
    started: float
    next_check: float
    give_up: float
    index: int = 0
    triggered: list[Address] = field(default_factory=list)
    open: OrderedDict[bytes, tuple[Address, float]] = field(default_factory=OrderedDict)
    valid: Address | None = None
    rtt: float | None = None
    dialling: bool = False
    learned: set[Address] = field(default_factory=set)


@dataclass(slots=True)
class CheckCounters:
    requests_answered: int = 0
    requests_refused: int = 0
    responses_refused: int = 0


class Checks:
    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random_bytes
        self._sessions: dict[bytes, _Session] = {}
        self._by_username: dict[bytes, _Session] = {}
        self._datagrams: list[tuple[bytes, Address]] = []
        self._dials: list[Dial] = []
        self._failures: list[tuple[bytes, bytes]] = []
        self.counters = CheckCounters()

    # --- sessions -----------------------------------------------------------------------------
    def start(self, punch: Punch, now: float) -> None:
        self.stop(punch.session)
        addresses = list(dict.fromkeys(c.address for c in punch.remote_candidates))
        give_up = now + CHECK_WINDOW + (0.0 if punch.controlling else LISTEN_GRACE)
        session = _Session(punch, punch.session.hex().encode(), addresses, now, now, give_up)
        self._sessions[punch.session] = session
        self._by_username[session.username] = session

    def stop(self, session_id: bytes) -> None:
        """The session is over (link up, given up, or replaced)."""
        session = self._sessions.pop(session_id, None)
        if session is not None:
            del self._by_username[session.username]

    def expecting(self, source: Address) -> Punch | None:
        """The listening-side session whose peer sends from ``source``, if any."""
        source = (normal_host(source[0]), source[1])
        for session in self._sessions.values():
            if not session.punch.controlling and (
                source in session.addresses or source in session.learned
            ):
                return session.punch
        return None

    def measured_rtt(self, session_id: bytes) -> float | None:
        session = self._sessions.get(session_id)
        return None if session is None else session.rtt

    # --- STUN in ------------------------------------------------------------------------------
    def request(self, decoded: stun.Decoded, source: Address, now: float) -> bool:
        """A Binding request on the socket; True if it was a check of one of our sessions."""
        message = decoded.message
        session = self._by_username.get(message.get(stun.ATTR_USERNAME) or b"")
        if session is None:
            return False
        if not stun.check_integrity(decoded, session.punch.local_secret):
            self.counters.requests_refused += 1
            return True
        source = (normal_host(source[0]), source[1])
        answer = stun.binding_success(message.transaction_id, *source)
        self._datagrams.append(
            (stun.encode(answer, integrity_key=session.punch.local_secret), source)
        )
        self.counters.requests_answered += 1
        if source not in session.addresses and source not in session.learned:
            if len(session.addresses) + len(session.learned) >= MAX_ADDRESSES:
                return True
            session.learned.add(source)
        if not session.dialling and source != session.valid and source not in session.triggered:
            session.triggered.append(source)
            session.next_check = min(session.next_check, now)
        return True

    def response(self, decoded: stun.Decoded, source: Address, now: float) -> bool:
        """A Binding success response; True if it answered one of our checks."""
        message = decoded.message
        for session in self._sessions.values():
            sent = session.open.get(message.transaction_id)
            if sent is not None:
                break
        else:
            return False
        address, sent_at = sent
        source = (normal_host(source[0]), source[1])
        if source != address or not stun.check_integrity(decoded, session.punch.remote_secret):
            self.counters.responses_refused += 1
            return True
        del session.open[message.transaction_id]
        if session.valid is None:
            session.valid, session.rtt = address, now - sent_at
        if session.punch.controlling and not session.dialling:
            session.dialling = True
            punch = session.punch
            self._dials.append(
                Dial(
                    punch.peer,
                    punch.session,
                    address,
                    punch.remote_fingerprint,
                    punch.remote_secret,
                    session.rtt,
                )
            )
        return True

    # --- time ---------------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        for session in list(self._sessions.values()):
            if now >= session.give_up and not session.dialling:
                self.stop(session.punch.session)
                self._failures.append((session.punch.peer, session.punch.session))
                continue
            if session.dialling or now >= session.started + CHECK_WINDOW:
                continue
            if session.next_check <= now:
                self._check(session, now)

    def _check(self, session: _Session, now: float) -> None:
        if session.triggered:
            target = session.triggered.pop(0)
        else:
            targets = session.addresses + sorted(session.learned)
            if not targets:
                session.next_check = math.inf
                return
            target = targets[session.index % len(targets)]
            session.index += 1
        txid = self._random(stun.TRANSACTION_ID_SIZE)
        request = stun.binding_request(txid, session.username)
        self._datagrams.append(
            (stun.encode(request, integrity_key=session.punch.remote_secret), target)
        )
        session.open[txid] = (target, now)
        while len(session.open) > MAX_OPEN:
            session.open.popitem(last=False)
        session.next_check = now + (SLOW_INTERVAL if session.valid else CHECK_INTERVAL)

    def next_deadline(self) -> float:
        deadline = math.inf
        for session in self._sessions.values():
            if not session.dialling:
                deadline = min(deadline, session.give_up)
                if session.next_check < session.started + CHECK_WINDOW:
                    deadline = min(deadline, session.next_check)
        return deadline

    # --- outputs ------------------------------------------------------------------------------
    def take_datagrams(self) -> list[tuple[bytes, Address]]:
        out, self._datagrams = self._datagrams, []
        return out

    def take_dials(self) -> list[Dial]:
        out, self._dials = self._dials, []
        return out

    def take_failures(self) -> list[tuple[bytes, bytes]]:
        """(peer, session) of punches that found no working pair in time."""
        out, self._failures = self._failures, []
        return out
