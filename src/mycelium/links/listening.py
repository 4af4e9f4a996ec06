"""Opening a peer listener, and the error that says which one could not be opened.

Kept out of ``node.py``: that module is compiled with mypyc (docs/architecture.md §6), which
cannot compile a subclass of ``OSError``.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class ListenError(OSError):
    """A peer listener could not be opened; the message names the protocol and port."""


async def listener_opened(what: str, port: int, opening: Awaitable[T]) -> T:
    """Await a listener; an OSError becomes a ListenError naming the protocol and port."""
    try:
        return await opening
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE or "bind" in reason:
            reason += " (another node running? -t and -q choose other ports)"
        error = ListenError(f"cannot listen for {what} on port {port}: {reason}")
        error.errno = exc.errno
        raise error from exc
