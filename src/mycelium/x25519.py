"""X25519 from the OpenSSL ``libcrypto`` that Python's ``ssl`` module has already loaded.

A node needs X25519 for its own public key and once per remote node it talks to: too rarely for
a library of its own. The AEAD comes from qh3 (``crypto.py``), and importing ``cryptography``
for these two calls alone would map its 7 MB native module into every node (5 to 8 MB of RSS
at rest). ``libcrypto`` is in the process already (asyncio and uvloop import ``ssl``), so its
``EVP_PKEY`` functions cost a few ``ctypes`` declarations. ``cryptography`` is the fallback
wherever that fails: no ``ssl`` module, no ``libcrypto`` symbols reachable from it, an OpenSSL
older than 1.1.1, or one configured without X25519 (a FIPS or base-only provider).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Final

#: OpenSSL's key type (NID) for X25519.
_NID_X25519: Final = 1034
KEY_SIZE: Final = 32
#: Own secrets whose keys are kept (``_LibCrypto.exchange``).
_OWN_KEYS: Final = 4


class X25519Error(ValueError):
    """A key OpenSSL refused, or an exchange with a low-order point (an all-zero secret)."""


def _libcrypto_candidates() -> list[str]:
    """Where ``libcrypto``'s symbols may be found: the ``_ssl`` extension itself (a lookup on
    its handle also searches the libraries it links), then any ``libcrypto`` mapped."""
    try:
        import _ssl
    except ImportError:
        return []
    candidates = [_ssl.__file__] if getattr(_ssl, "__file__", None) else []
    try:
        with open("/proc/self/maps", "rb") as maps:
            for line in maps:
                path = os.fsdecode(line.rstrip(b"\n").split(maxsplit=5)[-1])
                if path.startswith("/") and "/libcrypto.so" in path and path not in candidates:
                    candidates.append(path)
    except OSError:
        pass
    return candidates


class _LibCrypto:
    """The ``libcrypto`` functions X25519 needs, with their C signatures."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        p, size, i = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
        buf, size_p = ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)

        def fn(name: str, restype: object, *argtypes: object) -> Callable[..., object]:
            f = getattr(lib, name)
            f.restype, f.argtypes = restype, argtypes
            return f

        self.new_private = fn("EVP_PKEY_new_raw_private_key", p, i, p, buf, size)
        self.new_public = fn("EVP_PKEY_new_raw_public_key", p, i, p, buf, size)
        self.raw_public = fn("EVP_PKEY_get_raw_public_key", i, p, buf, size_p)
        self.free = fn("EVP_PKEY_free", None, p)
        self.ctx_new = fn("EVP_PKEY_CTX_new", p, p, p)
        self.ctx_free = fn("EVP_PKEY_CTX_free", None, p)
        self.derive_init = fn("EVP_PKEY_derive_init", i, p)
        self.set_peer = fn("EVP_PKEY_derive_set_peer", i, p, p)
        self.derive = fn("EVP_PKEY_derive", i, p, buf, size_p)
        #: A failed call leaves an entry in the thread's OpenSSL error queue, which the ``ssl``
        #: module would otherwise find and report against its own next call.
        self.clear_errors = fn("ERR_clear_error", None)
        #: Our own secrets' keys, kept for the process's life (a node has one): each exchange
        #: then makes one key instead of two. Never freed, so a key in use cannot be freed under
        #: another thread; bounded, so many identities (tests) cost no more than a few keys.
        self._own: dict[bytes, int] = {}

    def key(self, make: Callable[..., object], raw: bytes) -> int:
        if len(raw) != KEY_SIZE:
            raise X25519Error(f"an X25519 key is {KEY_SIZE} bytes, got {len(raw)}")
        pkey = make(_NID_X25519, None, raw, KEY_SIZE)
        if not pkey:
            self.clear_errors()
            raise X25519Error("OpenSSL refused the key")
        assert isinstance(pkey, int)
        return pkey

    def public_key(self, secret: bytes) -> bytes:
        pkey = self.key(self.new_private, secret)
        try:
            out, size = ctypes.create_string_buffer(KEY_SIZE), ctypes.c_size_t(KEY_SIZE)
            if self.raw_public(pkey, out, ctypes.byref(size)) != 1 or size.value != KEY_SIZE:
                self.clear_errors()
                raise X25519Error("OpenSSL could not give the public key")
            return out.raw
        finally:
            self.free(pkey)

    def exchange(self, secret: bytes, peer: bytes, keep: bool = True) -> bytes:
        """With ``keep``, the key of ``secret`` is kept for the next exchanges (see ``_own``)."""
        own = self._own.get(secret)
        if own is not None:
            return self._derive(own, peer)
        own = self.key(self.new_private, secret)
        if keep and len(self._own) < _OWN_KEYS:
            self._own[secret] = own
            return self._derive(own, peer)
        try:
            return self._derive(own, peer)
        finally:
            self.free(own)

    def _derive(self, own: int, peer: bytes) -> bytes:
        other = self.key(self.new_public, peer)
        try:
            ctx = self.ctx_new(own, None)
            if not ctx:
                self.clear_errors()
                raise X25519Error("OpenSSL could not make a key exchange context")
            try:
                out, size = ctypes.create_string_buffer(KEY_SIZE), ctypes.c_size_t(KEY_SIZE)
                if (
                    self.derive_init(ctx) != 1
                    or self.set_peer(ctx, other) != 1
                    or self.derive(ctx, out, ctypes.byref(size)) != 1
                    or size.value != KEY_SIZE
                ):
                    # OpenSSL refuses an all-zero result (a low-order peer key) here.
                    self.clear_errors()
                    raise X25519Error("key exchange refused (a low-order public key?)")
                return out.raw
            finally:
                self.ctx_free(ctx)
        finally:
            self.free(other)


#: RFC 7748 §6.1: Alice's secret, her public key, Bob's public key and their shared secret.
_VECTOR: Final = tuple(
    bytes.fromhex(h)
    for h in (
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
    )
)


def _load() -> _LibCrypto | None:
    """The first candidate whose X25519 gives RFC 7748's answers. Through ``PyDLL``, which
    holds the GIL during each call as a C extension would."""
    secret, public, peer, shared = _VECTOR
    for path in _libcrypto_candidates():
        try:
            lib = _LibCrypto(ctypes.PyDLL(path))
            agrees = lib.exchange(secret, peer, keep=False) == shared
            if agrees and lib.public_key(secret) == public:
                return lib
        except (OSError, AttributeError, X25519Error):  # no such symbols, or no X25519
            continue
    return None


_LIB: Final = _load()


def public_key(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret."""
    secret = bytes(secret)
    if _LIB is not None:
        return _LIB.public_key(secret)
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    if len(secret) != KEY_SIZE:
        raise X25519Error(f"an X25519 key is {KEY_SIZE} bytes, got {len(secret)}")
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def exchange(secret: bytes, peer: bytes) -> bytes:
    """The raw X25519 shared secret; ``X25519Error`` for a low-order ``peer`` key."""
    secret, peer = bytes(secret), bytes(peer)
    if _LIB is not None:
        return _LIB.exchange(secret, peer)
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )

    try:
        own = X25519PrivateKey.from_private_bytes(secret)
        return own.exchange(X25519PublicKey.from_public_bytes(peer))
    except ValueError as exc:
        raise X25519Error(str(exc)) from None
