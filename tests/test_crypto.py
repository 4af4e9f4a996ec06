"""End-to-end encryption: X25519 + AES-256-GCM bodies (wire.md §3, checklist 6-8)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mycelium.crypto import CryptoError, KeyCache, SharedKey, shared_secret
from mycelium.identity import Identity

A = Identity.from_secret(hashlib.sha256(b"mycelium wire spec node A").digest())
B = Identity.from_secret(hashlib.sha256(b"mycelium wire spec node B").digest())
SHARED = "44bb709b6d07cc6a0c6413ffeabd47b954aa9bb7c3f6d8e55d0fe19eb255fa1e"
INNER = bytes.fromhex(
    "60000000000c3a4004960b18c3a920a75ffcf64f14cc002d0514d8f2e497c1d2e3c99e4094d5d9f0"
    "8000ba2c1234000170696e67"
)
NONCE = bytes(range(12))
RAW = bytes.fromhex(
    "0cd9c096dc99c42fabd97a871abdc3d6b5e1da8e8b4cc30b21232b062366f4bb3f27acbc7ab283731b1eff4b"
    "35948e331069a129e7a9a3f5" + "d3bb65b851e9619bc384a804f4c34f0a" + "000102030405060708090a0b"
)


def test_shared_secret_is_symmetric_and_matches_the_vector() -> None:
    assert shared_secret(A.secret, B.public_key).hex() == SHARED
    assert shared_secret(B.secret, A.public_key).hex() == SHARED


def test_end_to_end_vector() -> None:
    key = SharedKey(bytes.fromhex(SHARED))
    plaintext = b"\x01\x00\x00\x00" + INNER
    assert key.seal(plaintext, NONCE) == RAW
    assert SharedKey(shared_secret(B.secret, A.public_key)).open(RAW) == plaintext


def test_low_order_public_keys_are_refused() -> None:
    for low in (bytes(32), b"\x01" + bytes(31)):
        with pytest.raises(CryptoError):
            shared_secret(A.secret, low)


def test_short_and_tampered_bodies_are_refused() -> None:
    key = SharedKey(bytes.fromhex(SHARED))
    with pytest.raises(CryptoError):
        key.open(RAW[:31])
    for i in (0, 60, len(RAW) - 13, len(RAW) - 1):
        bad = bytearray(RAW)
        bad[i] ^= 1
        with pytest.raises(CryptoError):
            key.open(bytes(bad))


@given(st.binary(min_size=4, max_size=2000))
def test_seal_open_round_trip(plaintext: bytes) -> None:
    # Plaintexts always carry the 4-byte user-data header, so bodies are at least 32 bytes.
    key = SharedKey(bytes.fromhex(SHARED))
    sealed = key.seal(plaintext)
    assert len(sealed) == len(plaintext) + 28
    assert key.open(sealed) == plaintext


def test_key_cache_reuses_and_bounds() -> None:
    cache = KeyCache(A.secret, capacity=2)
    first = cache.get(B.public_key)
    assert cache.get(B.public_key) is first
    others = [Identity.generate().public_key for _ in range(3)]
    for pk in others:
        cache.get(pk)
    assert len(cache) == 2
    assert cache.get(B.public_key) is not first  # evicted, recomputed
