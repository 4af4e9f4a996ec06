"""End-to-end encryption of data bodies: X25519 shared secret used raw as an AES-256-GCM key.

Body layout on the wire is ciphertext ‖ tag ‖ nonce (nonce last), with no associated data.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
#: Smallest body a receiver will try to open: 4-byte user header + tag + nonce.
MIN_SEALED_SIZE: Final = 4 + TAG_SIZE + NONCE_SIZE


try:
    # The Rust functions behind X25519PrivateKey.from_private_bytes and
    # X25519PublicKey.from_public_bytes. Those two import cryptography's OpenSSL backend module,
    # and with it its EC, RSA and OID modules, only to ask whether X25519 is supported: 1.3 MB
    # of a node at rest. The public API stays the fallback for another package layout.
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl

    _private_key = _rust_openssl.x25519.from_private_bytes
    _public_key = _rust_openssl.x25519.from_public_bytes
except (ImportError, AttributeError):
    _private_key = X25519PrivateKey.from_private_bytes
    _public_key = X25519PublicKey.from_public_bytes


class CryptoError(Exception):
    """A key exchange or decryption that failed; callers drop the packet."""


def public_key_of(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret."""
    return _private_key(secret).public_key().public_bytes_raw()


def shared_secret(own_secret: bytes, peer_public: bytes) -> bytes:
    """Raw X25519 output; low-order peer keys (all-zero result) are refused."""
    try:
        return _private_key(own_secret).exchange(_public_key(peer_public))
    except ValueError as exc:
        raise CryptoError(f"unusable peer public key: {exc}") from exc


class SharedKey:
    """An AES-256-GCM key shared with one remote node."""

    __slots__ = ("aead", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        #: The cipher itself: the data plane's batch loops call its ``encrypt``/``decrypt``
        #: directly (ciphertext and tag in one buffer, the nonce apart, no associated data).
        self.aead = AESGCM(raw)

    def seal(self, plaintext: bytes, nonce: bytes | None = None) -> bytes:
        if nonce is None:
            nonce = os.urandom(NONCE_SIZE)
        return self.aead.encrypt(nonce, plaintext, None) + nonce

    def open(self, body: bytes) -> bytes:
        if len(body) < MIN_SEALED_SIZE:
            raise CryptoError("sealed body too short")
        try:
            return self.aead.decrypt(body[-NONCE_SIZE:], body[:-NONCE_SIZE], None)
        except InvalidTag:
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
