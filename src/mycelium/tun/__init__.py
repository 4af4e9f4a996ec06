"""The host side of the overlay: a Linux TUN interface carrying ``400::/7``.

The device (``linux.py``, with GRO and interface configuration) is imported on first use:
a node started with ``--no-tun`` still catches ``TunError`` and never loads the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import TunError

if TYPE_CHECKING:
    from .linux import DEFAULT_MTU, DEFAULT_NAME, OVERLAY_PREFIX_LEN, TunDevice

__all__ = ["DEFAULT_MTU", "DEFAULT_NAME", "OVERLAY_PREFIX_LEN", "TunDevice", "TunError"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(".linux", __name__), name)
