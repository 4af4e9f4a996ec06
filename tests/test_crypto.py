"""End-to-end encryption: X25519 + AES-256-GCM bodies (docs/wire.md §3, §13 items 6-8)."""

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


def test_rfc7748_x25519_vector() -> None:
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice_pub = Identity.from_secret(alice).public_key
    bob_pub = Identity.from_secret(bob).public_key
    assert alice_pub.hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert bob_pub.hex() == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert shared_secret(alice, bob_pub).hex() == shared == shared_secret(bob, alice_pub).hex()


LOW_ORDER_POINTS = [  # u-coordinates (little-endian) whose X25519 output is all zero
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
]


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_every_low_order_point_is_refused_and_never_cached(point: str) -> None:
    low = bytes.fromhex(point)
    with pytest.raises(CryptoError):
        shared_secret(B.secret, low)
    cache = KeyCache(A.secret)
    with pytest.raises(CryptoError):
        cache.get(low)
    assert len(cache) == 0


def test_malformed_public_keys_are_crypto_errors() -> None:
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(CryptoError):
            shared_secret(A.secret, bad)


def test_minimum_body_is_32_bytes_and_nonce_is_last() -> None:
    key = SharedKey(bytes.fromhex(SHARED))
    sealed = key.seal(b"\x01\x00\x00\x00", NONCE)
    assert len(sealed) == 32 and sealed[-12:] == NONCE
    assert key.open(sealed) == b"\x01\x00\x00\x00"
    # The same plaintext under a fresh random nonce gives a different body.
    assert key.seal(b"\x01\x00\x00\x00") != key.seal(b"\x01\x00\x00\x00")
    # No associated data and no KDF: plain AESGCM with the raw shared secret opens it.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    assert AESGCM(bytes.fromhex(SHARED)).decrypt(RAW[-12:], RAW[:-12], None)[4:] == INNER


def test_a_third_party_key_cannot_open() -> None:
    c = Identity.from_secret(hashlib.sha256(b"mycelium wire spec node C").digest())
    wrong = SharedKey(shared_secret(c.secret, A.public_key))
    with pytest.raises(CryptoError):
        wrong.open(RAW)


@given(st.binary(min_size=0, max_size=200))
def test_open_never_raises_anything_but_crypto_error(blob: bytes) -> None:
    with pytest.raises(CryptoError):
        SharedKey(bytes.fromhex(SHARED)).open(blob)


def test_key_cache_is_least_recently_used() -> None:
    cache = KeyCache(A.secret, capacity=2)
    first, second, third = (Identity.generate().public_key for _ in range(3))
    kept = cache.get(first)
    cache.get(second)
    assert cache.get(first) is kept  # refreshed: `second` is now the oldest
    cache.get(third)
    assert len(cache) == 2 and cache.get(first) is kept
    assert cache.get(B.public_key).raw.hex() == SHARED
