"""X25519 through libcrypto (x25519.py): the same answers as ``cryptography``, its fallback."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from mycelium import x25519

ALICE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
#: The order-1 and order-8 points of RFC 7748 §6.1's check (and the one of order 4 on the
#: twist): each makes the exchange's result all zero.
LOW_ORDER = [
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
]

needs_libcrypto = pytest.mark.skipif(x25519._LIB is None, reason="no libcrypto X25519")


@pytest.fixture(params=["libcrypto", "cryptography"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "cryptography":
        monkeypatch.setattr(x25519, "_LIB", None)
    elif x25519._LIB is None:
        pytest.skip("no libcrypto X25519")
    return str(request.param)


def test_rfc7748_vector(implementation: str) -> None:
    assert x25519.public_key(ALICE).hex() == ALICE_PUBLIC
    assert x25519.exchange(ALICE, BOB_PUBLIC).hex() == SHARED


def test_low_order_points_and_wrong_sizes_are_refused(implementation: str) -> None:
    for point in LOW_ORDER:
        with pytest.raises(x25519.X25519Error):
            x25519.exchange(ALICE, point)
    for size in (0, 31, 33):
        with pytest.raises(x25519.X25519Error):
            x25519.exchange(ALICE, bytes(size))
        with pytest.raises(x25519.X25519Error):
            x25519.public_key(bytes(size))


@needs_libcrypto
@settings(max_examples=50)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_libcrypto_agrees_with_cryptography(own: bytes, peer_secret: bytes) -> None:
    expected_public = X25519PrivateKey.from_private_bytes(own).public_key().public_bytes_raw()
    assert x25519.public_key(own) == expected_public
    peer = x25519.public_key(peer_secret)
    expected = X25519PrivateKey.from_private_bytes(own).exchange(
        X25519PublicKey.from_public_bytes(peer)
    )
    assert x25519.exchange(own, peer) == expected == x25519.exchange(peer_secret, expected_public)


@needs_libcrypto
def test_a_refused_exchange_leaves_no_openssl_error_for_the_ssl_module() -> None:
    assert x25519._LIB is not None
    peek = x25519._LIB.lib.ERR_peek_error
    peek.restype = ctypes.c_ulong
    with pytest.raises(x25519.X25519Error):
        x25519.exchange(ALICE, LOW_ORDER[1])
    assert peek() == 0


@needs_libcrypto
def test_own_keys_are_kept_for_a_few_secrets_only() -> None:
    lib = x25519._LIB
    assert lib is not None
    for i in range(2 * x25519._OWN_KEYS):
        x25519.exchange(bytes([i + 1]) * 32, BOB_PUBLIC)
    assert len(lib._own) <= x25519._OWN_KEYS
    # A secret that found the cache full still gives the right answer.
    assert x25519.exchange(ALICE, BOB_PUBLIC).hex() == SHARED


def test_an_openssl_without_x25519_falls_back_to_cryptography(tmp_path: Path) -> None:
    # A configuration that loads only OpenSSL's base provider, as a locked-down (FIPS-like)
    # system might: libcrypto's symbols are there but refuse X25519 keys.
    config = tmp_path / "openssl.cnf"
    config.write_text(
        "openssl_conf = init\n[init]\nproviders = providers\n"
        "[providers]\nbase = base\n[base]\nactivate = 1\n"
    )
    probe = (
        "from mycelium import x25519\n"
        "print(x25519._LIB is None, x25519.public_key(bytes(range(32))).hex())\n"
    )
    env = {**os.environ, "OPENSSL_CONF": str(config)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    expected = X25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()
    assert done.stdout.split() == ["True", expected.public_bytes_raw().hex()]


def test_keys_may_come_as_any_bytes_like_value(implementation: str) -> None:
    assert x25519.exchange(bytearray(ALICE), memoryview(BOB_PUBLIC)).hex() == SHARED
