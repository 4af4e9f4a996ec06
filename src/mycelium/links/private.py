"""Private networks (docs/wire.md §6.4): a network name and a 32-byte key decide who may join.

In private mode every TCP connection is TLS with that key, QUIC is off, and discovered peers are
dialled with TLS; vsock stays plaintext, as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

NAME_MIN, NAME_MAX = 2, 64
KEY_SIZE = 32


class PrivateNetworkError(ValueError):
    """A network name or key file the reference would refuse."""


@dataclass(frozen=True)
class PrivateNetwork:
    """A network name and its key; the key is kept out of ``repr`` (logs, tracebacks)."""

    name: bytes
    key: bytes = field(repr=False)

    @classmethod
    def load(cls, name: str, key_file: Path) -> PrivateNetwork:
        raw_name = name.encode()
        if not NAME_MIN <= len(raw_name) <= NAME_MAX:
            raise PrivateNetworkError(
                f"network name must be {NAME_MIN} to {NAME_MAX} bytes, got {len(raw_name)}"
            )
        try:
            with open(key_file, "rb") as f:
                key = f.read(KEY_SIZE)
        except OSError as exc:
            raise PrivateNetworkError(
                f"cannot read network key file {key_file}: {exc.strerror}"
            ) from None
        if len(key) != KEY_SIZE:
            raise PrivateNetworkError(
                f"network key file {key_file} holds {len(key)} bytes, a key is {KEY_SIZE}"
            )
        return cls(raw_name, key)
