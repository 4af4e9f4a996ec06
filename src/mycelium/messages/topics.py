"""Which topics a node accepts from whom, and which go to a local Unix socket (topic.rs)."""

from __future__ import annotations

import ipaddress
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


def _subnet(text: object) -> Subnet:
    """A subnet, or a bare address meaning just that address (as the reference reads them)."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a subnet")
    try:
        if "/" not in text:
            address = ipaddress.IPv6Address(text)
            return Subnet.of(address.packed, 128)
        return Subnet.parse(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv6 subnet or address") from None


def load_topic_config(text: str) -> TopicConfig:
    """``--topic-config``: TOML with ``default = "Accept" | "Reject"`` and one key per topic, whose
    value is a list of allowed subnets or a table ``{subnets = [...], forward_socket = "..."}``.
    Raises ``ValueError`` with the reason (the reference silently ignores a broken file)."""
    import tomllib  # only with a topic config

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    default = data.pop("default", "Accept")
    if default not in ("Accept", "Reject"):
        raise ValueError(f'default must be "Accept" or "Reject", not {default!r}')
    config = TopicConfig(accept_by_default=default == "Accept")
    for topic, value in data.items():
        raw = topic.encode()
        if isinstance(value, list):
            subnets, socket = value, None
        elif isinstance(value, dict):
            subnets, socket = value.get("subnets", []), value.get("forward_socket")
            if not isinstance(subnets, list) or not (socket is None or isinstance(socket, str)):
                raise ValueError(f"topic {topic!r}: subnets must be a list, forward_socket a path")
        else:
            raise ValueError(f"topic {topic!r}: expected a list of subnets or a table")
        config.add_topic(raw)
        for text in subnets:
            config.add_source(raw, _subnet(text))
        config.set_forward_socket(raw, socket)
    return config
