"""Which topics a node accepts from whom, and which go to a local Unix socket (topic.rs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..subnet import Subnet


@dataclass
class TopicEntry:
    #: Sources allowed to send this topic; an empty list accepts nobody.
    subnets: list[Subnet] = field(default_factory=list)
    forward_socket: str | None = None


class TopicConfig:
    """A default action for unconfigured topics, plus a whitelist per configured topic."""

    def __init__(self, accept_by_default: bool = True) -> None:
        self.accept_by_default = accept_by_default
        self._topics: dict[bytes, TopicEntry] = {}

    def allowed(self, topic: bytes, src: bytes) -> bool:
        entry = self._topics.get(topic)
        if entry is None:
            return self.accept_by_default
        return any(subnet.contains(src) for subnet in entry.subnets)

    def topics(self) -> list[bytes]:
        return list(self._topics)

    def add_topic(self, topic: bytes) -> None:
        self._topics.setdefault(topic, TopicEntry())

    def remove_topic(self, topic: bytes) -> None:
        self._topics.pop(topic, None)

    def sources(self, topic: bytes) -> list[Subnet] | None:
        entry = self._topics.get(topic)
        return None if entry is None else list(entry.subnets)

    def add_source(self, topic: bytes, subnet: Subnet) -> None:
        entry = self._topics.setdefault(topic, TopicEntry())
        if subnet not in entry.subnets:
            entry.subnets.append(subnet)

    def remove_source(self, topic: bytes, subnet: Subnet) -> None:
        entry = self._topics.get(topic)
        if entry is not None and subnet in entry.subnets:
            entry.subnets.remove(subnet)

    def forward_socket(self, topic: bytes) -> str | None:
        entry = self._topics.get(topic)
        return None if entry is None else entry.forward_socket

    def set_forward_socket(self, topic: bytes, path: str | None) -> None:
        """Only for a configured topic (as the reference: an unknown topic is left alone)."""
        entry = self._topics.get(topic)
        if entry is not None:
            entry.forward_socket = path
