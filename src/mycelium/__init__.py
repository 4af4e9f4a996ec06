"""pymycelium: a Python implementation of the Mycelium end-to-end encrypted IPv6 overlay.

The classes an embedder needs are importable from here (``mycelium.Node``,
``mycelium.NodeConfig``, ...; see docs/embedding.md). They are imported on first use, so that
``import mycelium`` (and the command line's start) stays light; type checkers see the real
classes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .identity import Identity
    from .links.endpoint import Endpoint
    from .links.listening import ListenError
    from .messages.engine import ReceivedMessage
    from .node import Node
    from .node_config import NodeConfig

__version__ = "0.1.0"
#: The reference release whose wire protocol and interfaces this package follows.
REFERENCE_VERSION = "0.7.10"

_LAZY = {
    "Endpoint": ".links.endpoint",
    "Identity": ".identity",
    "ListenError": ".links.listening",
    "Node": ".node",
    "NodeConfig": ".node_config",
    "ReceivedMessage": ".messages.engine",
}

__all__ = [
    "REFERENCE_VERSION",
    "Endpoint",
    "Identity",
    "ListenError",
    "Node",
    "NodeConfig",
    "ReceivedMessage",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mycelium' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
