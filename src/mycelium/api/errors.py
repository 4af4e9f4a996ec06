"""Errors an API handler raises; the REST and JSON-RPC layers turn them into their wire shapes."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A client's mistake or a refused request: an HTTP status and a human-readable message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RpcError(Exception):
    """A JSON-RPC error object (code, message, optional data)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
