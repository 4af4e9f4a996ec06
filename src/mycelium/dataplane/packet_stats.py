"""Packets and bytes routed per source and per destination address (``stats packets``).

The reference counts every data packet its router handles (originated after encryption,
forwarded, or received for delivery; bytes = encrypted body) in two maps that never shrink, so a
scan of many addresses grows them without bound. Here each map holds at most ``limit``
addresses: when a new address finds it full, the half with the fewest packets is forgotten
(heavy talkers stay, and ``evicted`` says how many entries went).

The data plane counts a run of packets with the same (src, dst) in local integers and folds the
run in when the addresses change and at the end of the batch (a bulk flow's packets come in runs),
so most packets cost two 16-byte compares and no hashing. A lone packet (a ping) costs two dict
lookups, with no per-batch tally to build and fold. Runs go in as they end, so an eviction in the
middle of a batch weighs the counts up to that point, as counting packet by packet would.
"""

from __future__ import annotations

from typing import Final, NamedTuple

DEFAULT_LIMIT: Final = 10_000


class PacketStats:
    __slots__ = ("by_dst", "by_src", "evicted", "limit")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 2:
            raise ValueError("the limit must allow at least 2 addresses")
        self.limit = limit
        #: address -> [packets, bytes]
        self.by_src: dict[bytes, list[int]] = {}
        self.by_dst: dict[bytes, list[int]] = {}
        self.evicted = 0

    def record(self, src: bytes, dst: bytes, packets: int, size: int) -> None:
        """Count ``packets`` packets of ``size`` bytes in all from ``src`` to ``dst``."""
        self._bump(self.by_src, src, packets, size)
        self._bump(self.by_dst, dst, packets, size)

    def _bump(self, table: dict[bytes, list[int]], address: bytes, packets: int, size: int) -> None:
        entry = table.get(address)
        if entry is not None:
            entry[0] += packets
            entry[1] += size
            return
        if len(table) >= self.limit:
            self._shrink(table)
        table[address] = [packets, size]

    def _shrink(self, table: dict[bytes, list[int]]) -> None:
        ranked = sorted(table, key=lambda a: table[a][0])
        for address in ranked[: len(ranked) - self.limit // 2]:
            del table[address]
        self.evicted += len(ranked) - len(table)

    def snapshot(self) -> tuple[list[AddressCount], list[AddressCount]]:
        """(by source, by destination), each in the order the addresses were first seen."""
        return _counts(self.by_src), _counts(self.by_dst)


class AddressCount(NamedTuple):
    address: bytes
    packets: int
    byte_count: int


def _counts(table: dict[bytes, list[int]]) -> list[AddressCount]:
    return [AddressCount(address, p, b) for address, (p, b) in table.items()]
