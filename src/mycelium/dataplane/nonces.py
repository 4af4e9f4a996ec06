"""Random AES-GCM nonces, drawn in bulk: one ``getrandom`` per 512 packets.

Every nonce is 12 fresh random bytes, as a Rust node draws its own (docs/wire.md §3.5); drawing
them 512 at a time only saves the system calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from ..crypto import NONCE_SIZE

_POOL: Final = NONCE_SIZE * 512


class NoncePool:
    """``take`` one nonce; a batch loop pops ``stock`` itself and calls ``refill`` when empty."""

    __slots__ = ("_random", "stock")

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random_bytes
        #: Unused nonces, next one last: ``pop()`` hands them out in the order they were drawn.
        self.stock: list[bytes] = []

    def take(self) -> bytes:
        if not self.stock:
            self.refill()
        return self.stock.pop()

    def refill(self) -> None:
        pool = self._random(_POOL)
        size = NONCE_SIZE
        self.stock.extend(pool[i : i + size] for i in range(len(pool) - size, -1, -size))
