"""Random 12-byte AES-GCM nonces, drawn in bulk: one ``getrandom`` per 512.

They seal what the data plane sends outside its batch loop (as a Rust node seals everything,
docs/wire.md §3.2), and are the IVs of the ciphers it keeps per destination
(``dataplane/ciphers.py``). Drawing them 512 at a time only saves the system calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from ..crypto import NONCE_SIZE

_POOL: Final = NONCE_SIZE * 512


class NoncePool:
    __slots__ = ("_random", "_stock")

    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random_bytes
        #: Unused nonces, next one last: ``pop()`` hands them out in the order they were drawn.
        self._stock: list[bytes] = []

    def take(self) -> bytes:
        if not self._stock:
            pool = self._random(_POOL)
            size = NONCE_SIZE
            self._stock.extend(pool[i : i + size] for i in range(len(pool) - size, -1, -size))
        return self._stock.pop()
