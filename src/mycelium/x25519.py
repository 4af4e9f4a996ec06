"""X25519 from the OpenSSL ``libcrypto`` that Python's ``ssl`` module has already mapped.

A node needs X25519 for its own public key and once per remote node it talks to: too rarely for
a library of its own. The AEAD comes from qh3 (``crypto.py``), and importing ``cryptography``
for these two calls alone would map its 7 MB native module into every node (about 8 MB of RSS
at rest). ``libcrypto`` is in the process already (asyncio and uvloop import ``ssl``), so its
``EVP_PKEY`` functions cost a few ``ctypes`` declarations. Where no shared ``libcrypto`` is
mapped (a Python that links OpenSSL statically), ``cryptography`` is the fallback.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Final

#: OpenSSL's key type (NID) for X25519.
_NID_X25519: Final = 1034
KEY_SIZE: Final = 32
#: Own secrets whose keys are kept (``_LibCrypto.exchange``).
_OWN_KEYS: Final = 4


class X25519Error(ValueError):
    """A key OpenSSL refused, or an exchange with a low-order point (an all-zero secret)."""


def _mapped_libcrypto() -> str | None:
    """The path of the ``libcrypto`` shared object this process has mapped, if any."""
    import _ssl  # noqa: F401  (maps libcrypto where ssl links it dynamically)

    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if path.startswith("/") and "/libcrypto.so" in path:
                    return path
    except OSError:
        return None
    return None


class _LibCrypto:
    """The seven ``libcrypto`` functions X25519 needs, with their C signatures."""

    def __init__(self, lib: ctypes.CDLL) -> None:
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

    def exchange(self, secret: bytes, peer: bytes) -> bytes:
        own = self._own.get(secret)
        if own is not None:
            return self._derive(own, peer)
        own = self.key(self.new_private, secret)
        if len(self._own) < _OWN_KEYS:
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
                raise MemoryError("EVP_PKEY_CTX_new failed")
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


def _load() -> _LibCrypto | None:
    """Through ``PyDLL``, which holds the GIL during each call as a C extension would."""
    path = _mapped_libcrypto()
    if path is None:
        return None
    try:
        return _LibCrypto(ctypes.PyDLL(path))
    except (OSError, AttributeError):  # unloadable, or an OpenSSL older than 1.1.1
        return None


_LIB: Final = _load()


def public_key(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret."""
    if _LIB is not None:
        return _LIB.public_key(secret)
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    if len(secret) != KEY_SIZE:
        raise X25519Error(f"an X25519 key is {KEY_SIZE} bytes, got {len(secret)}")
    return X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()


def exchange(secret: bytes, peer: bytes) -> bytes:
    """The raw X25519 shared secret; ``X25519Error`` for a low-order ``peer`` key."""
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
