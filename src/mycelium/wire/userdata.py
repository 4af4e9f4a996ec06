"""The 4-byte header inside every encrypted payload: version 1, payload type, 2 reserved bytes."""

from __future__ import annotations

from .errors import MalformedPacket

USER_DATA_VERSION = 1
PAYLOAD_L3 = 0
PAYLOAD_MESSAGE = 1
PAYLOAD_ICMP = 2
HEADER_SIZE = 4

_HEADERS = {kind: bytes((USER_DATA_VERSION, kind, 0, 0)) for kind in (0, 1, 2)}


def header(kind: int) -> bytes:
    return _HEADERS[kind]


def split(plaintext: bytes) -> tuple[int, bytes]:
    """(payload type, payload) of a decrypted body; reserved bytes are ignored as in Rust."""
    if len(plaintext) < HEADER_SIZE:
        raise MalformedPacket("decrypted payload shorter than its header")
    if plaintext[0] != USER_DATA_VERSION:
        raise MalformedPacket(f"user data version {plaintext[0]}")
    kind = plaintext[1]
    if kind not in _HEADERS:
        raise MalformedPacket(f"unknown payload type {kind}")
    return kind, plaintext[HEADER_SIZE:]
