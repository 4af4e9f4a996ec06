"""What the node needs of its packet device: the TUN interface, or a stand-in in tests.

The node holds its device by this protocol rather than by ``TunDevice``: ``node.py`` is compiled
with mypyc (docs/architecture.md §6), which checks an attribute typed with a compiled class at
every assignment, and a protocol type is checked by mypy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class PacketDevice(Protocol):
    def fileno(self) -> int:
        """The descriptor the loop watches for packets to read."""

    def read_batch(self, max_packets: int) -> list[bytes]:
        """The packets available now, at most ``max_packets``."""

    def write_batch(
        self, packets: Sequence[bytes], delivered: Sequence[bytes], hops: Sequence[int]
    ) -> int:
        """Hand packets to the host (``TunDevice.write_batch`` says how); returns the writes
        the kernel took."""

    def close(self) -> None: ...
