"""End-to-end encryption of data bodies: X25519 shared secret used raw as an AES-256-GCM key.

Body layout on the wire is ciphertext ‖ tag ‖ nonce (nonce last), with no associated data.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Final

from . import x25519
from .qh3_native import AeadAes256Gcm, AuthenticationFailed

NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
#: Smallest body a receiver will try to open: 4-byte user header + tag + nonce.
MIN_SEALED_SIZE: Final = 4 + TAG_SIZE + NONCE_SIZE
#: The AEAD's associated data: none (what a Rust node seals with).
NO_AAD: Final = b""


class CryptoError(Exception):
    """A key exchange or decryption that failed; callers drop the packet."""


def public_key_of(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret."""
    return x25519.public_key(secret)


def shared_secret(own_secret: bytes, peer_public: bytes) -> bytes:
    """Raw X25519 output; low-order peer keys (all-zero result) are refused."""
    try:
        return x25519.exchange(own_secret, peer_public)
    except x25519.X25519Error as exc:
        raise CryptoError(f"unusable peer public key: {exc}") from exc


class SharedKey:
    """An AES-256-GCM key shared with one remote node.

    qh3's AEAD takes the nonce when it is made (QUIC's per-connection IV, to which it adds a
    packet number): a body with a random nonce, as a Rust node seals every packet, gets its own
    ``AeadAes256Gcm(raw, nonce)`` with packet number 0. The data plane's batch loops keep one
    cipher per address instead (``dataplane/ciphers.py``).
    """

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def seal(self, plaintext: bytes, nonce: bytes | None = None) -> bytes:
        if nonce is None:
            nonce = os.urandom(NONCE_SIZE)
        return AeadAes256Gcm(self.raw, nonce).encrypt(0, plaintext, NO_AAD) + nonce

    def open(self, body: bytes) -> bytes:
        if len(body) < MIN_SEALED_SIZE:
            raise CryptoError("sealed body too short")
        try:
            cipher = AeadAes256Gcm(self.raw, body[-NONCE_SIZE:])
            return cipher.decrypt(0, body[:-NONCE_SIZE], NO_AAD)
        except AuthenticationFailed:
            raise CryptoError("authentication failed") from None


class KeyCache:
    """Shared keys per peer public key, so each X25519 exchange is done once (LRU bounded)."""

    def __init__(self, own_secret: bytes, capacity: int = 65536) -> None:
        self._secret = own_secret
        self._capacity = capacity
        self._keys: OrderedDict[bytes, SharedKey] = OrderedDict()

    def get(self, peer_public: bytes) -> SharedKey:
        key = self._keys.get(peer_public)
        if key is not None:
            self._keys.move_to_end(peer_public)
            return key
        key = SharedKey(shared_secret(self._secret, peer_public))
        self._keys[peer_public] = key
        if len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return key

    def __len__(self) -> int:
        return len(self._keys)
