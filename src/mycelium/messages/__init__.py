"""The message bus: reliable, topic-based messages between nodes (docs/messages.md)."""

from .engine import MessageEngine, ReceivedMessage, State
from .topics import TopicConfig

__all__ = ["MessageEngine", "ReceivedMessage", "State", "TopicConfig"]
