"""What the facade raises when it refuses a request; rest.py and jsonrpc.py each turn these into
their wire shapes (an HTTP status, a JSON-RPC error code) from one table of their own."""

from __future__ import annotations

from typing import Any


class BadRequest(ValueError):
    """The request names something malformed (an endpoint, an IP, a number)."""


class BadTopic(BadRequest):
    """A topic that is not base64 (or not a byte list, where one is accepted)."""


class BadSubnet(BadRequest):
    """A subnet that does not parse."""


class BadMessageId(BadRequest):
    """A message id that is not 16 hex characters."""


class PushRefused(BadRequest):
    """A well-formed message the engine will not send (topic or payload too large)."""


class Conflict(Exception):
    """The thing to add already exists."""


class NotFound(Exception):
    """The thing asked for does not exist."""


class Unavailable(Exception):
    """The part of the node that would answer is not running (messages before start)."""


class RpcError(Exception):
    """A JSON-RPC error object (code, message, optional data), for protocol-level errors."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
