"""The NAT traversal exchange: what two nodes send each other on the reserved message topic.

Every payload starts with a version byte (1) and a kind byte. An OFFER and its ANSWER carry:

    8 bytes   session ID (the offerer's choice; the answer repeats it)
    1 byte    the sender's NAT type (candidates.NatType)
    32 bytes  SHA-256 of the sender's QUIC certificate (DER): the dialling side checks it
    16 bytes  the sender's secret: signs STUN checks sent *to* the sender, and is what the
              dialling side presents on the punched link when the sender is the listening side
    1 byte    number of candidates (at most 8), then per candidate:
              1 byte kind, 1 byte address length (4 or 16), the address, 2 bytes port

A DECLINE is the session ID and a reason byte. Integers are big-endian. The message bus already
encrypts and authenticates these end to end, so nothing here is signed again (docs/nat.md).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import IntEnum

from .candidates import Candidate, CandidateKind, NatType, normal_host

#: The message topic; topics under ``pymycelium.`` never reach the user's inbox.
TOPIC = b"pymycelium.nat/1"
VERSION = 1
SESSION_SIZE = 8
FINGERPRINT_SIZE = 32
SECRET_SIZE = 16
MAX_CANDIDATES = 8

_OFFER_HEAD = struct.Struct(f"!BB{SESSION_SIZE}sB{FINGERPRINT_SIZE}s{SECRET_SIZE}sB")
_DECLINE = struct.Struct(f"!BB{SESSION_SIZE}sB")


class ProtocolError(ValueError):
    """A payload that is not a well-formed NAT traversal message."""


class Kind(IntEnum):
    OFFER = 1
    ANSWER = 2
    DECLINE = 3


class DeclineReason(IntEnum):
    #: The node takes no more sessions right now (or has not gathered its candidates yet).
    BUSY = 1
    #: Both ends are behind symmetric NATs: no punch can work.
    SYMMETRIC = 2
    #: The node already has a direct link to the sender.
    LINKED = 3


@dataclass(frozen=True, slots=True)
class Offer:
    """An OFFER or ANSWER (``answer`` tells which)."""

    session: bytes
    nat_type: NatType
    fingerprint: bytes
    secret: bytes
    candidates: tuple[Candidate, ...]
    answer: bool = False

    def encode(self) -> bytes:
        if len(self.candidates) > MAX_CANDIDATES:
            raise ValueError(f"at most {MAX_CANDIDATES} candidates")
        kind = Kind.ANSWER if self.answer else Kind.OFFER
        parts = [
            _OFFER_HEAD.pack(
                VERSION,
                kind,
                self.session,
                self.nat_type,
                self.fingerprint,
                self.secret,
                len(self.candidates),
            )
        ]
        for candidate in self.candidates:
            packed = ipaddress.ip_address(candidate.host).packed
            parts.append(struct.pack("!BB", candidate.kind, len(packed)) + packed)
            parts.append(struct.pack("!H", candidate.port))
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Decline:
    session: bytes
    reason: DeclineReason

    def encode(self) -> bytes:
        return _DECLINE.pack(VERSION, Kind.DECLINE, self.session, self.reason)


Message = Offer | Decline


def decode(payload: bytes) -> Message:
    """Parse a payload; ``ProtocolError`` for anything malformed, unknown or trailing."""
    if len(payload) < 2:
        raise ProtocolError("payload too short")
    if payload[0] != VERSION:
        raise ProtocolError(f"version {payload[0]} not understood")
    try:
        kind = Kind(payload[1])
    except ValueError:
        raise ProtocolError(f"unknown kind {payload[1]}") from None
    if kind is Kind.DECLINE:
        if len(payload) != _DECLINE.size:
            raise ProtocolError("DECLINE has the wrong length")
        _v, _k, session, reason = _DECLINE.unpack(payload)
        try:
            return Decline(session, DeclineReason(reason))
        except ValueError:
            raise ProtocolError(f"unknown decline reason {reason}") from None
    if len(payload) < _OFFER_HEAD.size:
        raise ProtocolError("OFFER too short")
    _v, _k, session, nat, fingerprint, secret, count = _OFFER_HEAD.unpack_from(payload)
    if count > MAX_CANDIDATES:
        raise ProtocolError(f"{count} candidates, at most {MAX_CANDIDATES}")
    try:
        nat_type = NatType(nat)
    except ValueError:
        nat_type = NatType.UNKNOWN  # a later version's finer classification
    candidates = []
    offset = _OFFER_HEAD.size
    for _ in range(count):
        if offset + 2 > len(payload):
            raise ProtocolError("truncated candidate")
        kind_byte, size = payload[offset], payload[offset + 1]
        if size not in (4, 16) or offset + 4 + size > len(payload):
            raise ProtocolError("bad candidate address")
        packed = payload[offset + 2 : offset + 2 + size]
        (port,) = struct.unpack_from("!H", payload, offset + 2 + size)
        offset += 4 + size
        try:
            candidates.append(
                Candidate(
                    CandidateKind(kind_byte), normal_host(str(ipaddress.ip_address(packed))), port
                )
            )
        except ValueError as exc:
            raise ProtocolError(f"bad candidate: {exc}") from None
    if offset != len(payload):
        raise ProtocolError("trailing bytes")
    return Offer(session, nat_type, fingerprint, secret, tuple(candidates), kind is Kind.ANSWER)
