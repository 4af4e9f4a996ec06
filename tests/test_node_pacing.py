"""The node stops reading its TUN only while every link is congested (Node._pace_tun): one
neighbour that stops reading cannot stall the node's traffic to the others."""

from __future__ import annotations

from typing import Any

from mycelium.links.backlog import Backlog
from mycelium.node import Node, NodeConfig


class FakeLoop:
    def __init__(self) -> None:
        self.reading = True

    def add_reader(self, fd: int, callback: Any) -> None:
        assert not self.reading
        self.reading = True

    def remove_reader(self, fd: int) -> None:
        assert self.reading
        self.reading = False

    def time(self) -> float:
        return 0.0

    def call_at(self, when: float, callback: Any) -> None:
        pass


class FakeLink:
    connection_id = "fake"

    def __init__(self) -> None:
        self.backlog = Backlog()


class FakeTun:
    def fileno(self) -> int:
        return 99


def test_the_tun_pauses_only_while_every_link_is_congested() -> None:
    node = Node(NodeConfig.loopback())
    loop = FakeLoop()
    node._loop = loop  # type: ignore[assignment]
    node.tun = FakeTun()  # type: ignore[assignment]
    a, b = FakeLink(), FakeLink()
    node.links.update((a, b))  # type: ignore[arg-type]
    node.link_pause_writing(a)  # type: ignore[arg-type]
    assert loop.reading  # b still takes traffic
    node.link_pause_writing(b)  # type: ignore[arg-type]
    assert not loop.reading
    node.link_pause_writing(b)  # type: ignore[arg-type]
    node.link_resume_writing(a)  # type: ignore[arg-type]
    assert loop.reading
    node.link_pause_writing(a)  # type: ignore[arg-type]
    assert not loop.reading
    node.link_closed(a, "gone")  # type: ignore[arg-type]
    assert not loop.reading  # the one link left is still congested
    node.link_resume_writing(b)  # type: ignore[arg-type]
    assert loop.reading
