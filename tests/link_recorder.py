"""A LinkHandler that records what a link delivers, for transport tests."""

from __future__ import annotations

import asyncio

from mycelium.links.base import Link
from mycelium.wire.stream import Packet


class Recorder:
    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.closed: list[str] = []
        self.links: list[Link] = []

    def link_packets(self, link: Link, packets: list[Packet]) -> None:
        self.packets.extend(packets)

    def link_closed(self, link: Link, reason: str) -> None:
        self.closed.append(reason)

    def link_pause_writing(self, link: Link) -> None:
        pass

    def link_resume_writing(self, link: Link) -> None:
        pass

    def accepted(self, link: Link) -> None:
        self.links.append(link)
        link.start()


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
