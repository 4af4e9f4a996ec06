"""qh3's native module, loaded without the rest of the package.

Every node uses qh3's AEADs (``crypto.py``, the TLS record layer) and, with a QUIC peer, its
QUIC core (``links/qh3_core.py``). But ``import qh3._hazmat`` first runs ``qh3/__init__.py``,
which loads qh3's asyncio client and server, its HTTP/3 layer and its QUIC connection: about
90 ms and several MB that a node without a QUIC peer never uses. So the package is registered
here unexecuted, and its ``__init__`` runs the first time anything reads a name from the
package itself: code elsewhere in the process that uses qh3 (``from qh3 import connect``) still
finds the whole package.
"""

from __future__ import annotations

import importlib.util
import sys


def _register_package() -> None:
    if "qh3" in sys.modules:
        return
    spec = importlib.util.find_spec("qh3")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not installed: the imports below say so
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(name: str) -> object:
        """PEP 562: a name the package does not have yet, so run its ``__init__`` (once)."""
        if "__getattr__" not in vars(package):
            raise AttributeError(f"module 'qh3' has no attribute {name!r}")
        del vars(package)["__getattr__"]
        loader.exec_module(package)
        return getattr(package, name)

    vars(package)["__getattr__"] = complete
    sys.modules["qh3"] = package


_register_package()

from qh3._hazmat import (  # noqa: E402  (after the registration above)
    AeadAes128Gcm,
    AeadAes256Gcm,
    AeadChaCha20Poly1305,
    CryptoError,
)

#: What every qh3 AEAD raises for a failed tag (and for a key or nonce of the wrong size).
AuthenticationFailed = CryptoError

__all__ = ["AeadAes128Gcm", "AeadAes256Gcm", "AeadChaCha20Poly1305", "AuthenticationFailed"]
