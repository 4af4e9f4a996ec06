"""The node's own topics on the message bus: ``pymycelium.`` and more (docs/nat.md §4).

A topic the node serves (NAT traversal's exchange) is taken from anyone, whatever the user's
topic rules say, if its message is small, not a reply, and its sender within its rate; the
engine hands such messages here (``internal``) instead of to the inbox or a socket. Other
reserved topics are refused. A TOPIC_QUERY asks another node whether it serves a topic; the
reference ignores that flag, so a reference node simply never answers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..ratelimit import KeyedRateLimiter
from ..wire import message as wire

if TYPE_CHECKING:
    from .engine import ReceivedMessage

PREFIX = b"pymycelium."
MAX_SIZE = 4096
#: New reserved-topic messages and topic queries taken per source: a burst, then one per 2 s.
BURST = 10
RATE = 0.5
#: Topic queries we wait answers for (older ones are forgotten).
MAX_OPEN_QUERIES = 1024


def is_reserved(topic: bytes) -> bool:
    return topic.startswith(PREFIX)


class ReservedTopics:
    def __init__(self, random_bytes: Callable[[int], bytes]) -> None:
        self._random = random_bytes
        self._served: set[bytes] = set()
        self._limit = KeyedRateLimiter(BURST, RATE)
        self._open: OrderedDict[bytes, tuple[bytes, bytes]] = OrderedDict()
        self._answers: list[tuple[bytes, bytes]] = []
        #: Completed messages on served topics, filled by the engine.
        self.internal: list[ReceivedMessage] = []

    def serve(self, topic: bytes) -> None:
        """Take messages on the reserved ``topic`` for the node itself, and say so to queries."""
        if not is_reserved(topic):
            raise ValueError(f"{topic!r} is not a reserved topic")
        self._served.add(topic)

    def admits(self, init: wire.Init, is_reply: bool, src: bytes, now: float) -> bool:
        """Whether a new message (its INIT) on a reserved topic is taken."""
        return (
            not is_reply
            and init.topic in self._served
            and init.length <= MAX_SIZE
            and self._limit.allow(src, now)
        )

    def query(self, dst: bytes, topic: bytes) -> wire.MessagePacket:
        """The packet asking ``dst`` whether it serves ``topic``."""
        query_id = self._random(wire.ID_SIZE)
        self._open[query_id] = (dst, topic)
        while len(self._open) > MAX_OPEN_QUERIES:
            self._open.popitem(last=False)
        return wire.MessagePacket(query_id, wire.FLAG_TOPIC_QUERY, topic)

    def on_query(
        self, packet: wire.MessagePacket, src: bytes, now: float
    ) -> wire.MessagePacket | None:
        """A TOPIC_QUERY packet: the answer to send back, if any (an answer to one of ours is
        noted for ``take_answers``)."""
        if packet.has(wire.FLAG_ACK):
            if self._open.get(packet.id) == (src, packet.body):
                del self._open[packet.id]
                self._answers.append((src, packet.body))
            return None
        if packet.body in self._served and self._limit.allow(src, now):
            return wire.MessagePacket(packet.id, wire.FLAG_TOPIC_QUERY | wire.FLAG_ACK, packet.body)
        return None

    def take_internal(self) -> list[ReceivedMessage]:
        out, self.internal = self.internal, []
        return out

    def take_answers(self) -> list[tuple[bytes, bytes]]:
        """(node address, topic) for every node that said it serves a topic we asked about."""
        out, self._answers = self._answers, []
        return out
