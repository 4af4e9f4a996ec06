"""qh3's QUIC core, loaded without the rest of the package.

``import qh3.quic.connection`` first runs ``qh3/__init__.py``, which also loads qh3's asyncio
client and server and its HTTP/3 layer: about 2 MB of resident memory that a node with a QUIC
peer never uses. So the package is registered here unexecuted, and its ``__init__`` runs the
first time anything reads a name from the package itself: code elsewhere in the process that
uses qh3 (``from qh3 import connect``) still finds the whole package.

Everything the QUIC links take from qh3 is imported through this module.
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

# The core, after the package's registration above (hence the E402 exemptions).
from qh3._hazmat import EcPrivateKey  # noqa: E402
from qh3.quic import events  # noqa: E402
from qh3.quic.configuration import QuicConfiguration  # noqa: E402
from qh3.quic.connection import (  # noqa: E402
    QuicConnection,
    QuicConnectionError,
    QuicConnectionState,
)
from qh3.quic.packet import (  # noqa: E402
    Buffer,
    QuicPacketType,
    encode_quic_retry,
    pull_quic_header,
)

__all__ = [
    "Buffer",
    "EcPrivateKey",
    "QuicConfiguration",
    "QuicConnection",
    "QuicConnectionError",
    "QuicConnectionState",
    "QuicPacketType",
    "encode_quic_retry",
    "events",
    "pull_quic_header",
]
