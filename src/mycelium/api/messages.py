"""The message bus and topic configuration as both APIs offer them (api.yaml, openrpc.json).

REST and JSON-RPC hand over the raw values they received (JSON values, query strings, path
segments); this parses them, refusing with the typed errors of ``errors.py``, calls the running
message service, and answers in the reference's JSON shapes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import math
import re
from typing import TYPE_CHECKING, Any

from ..identity import overlay_address, parse_public_key
from ..messages.engine import MAX_MESSAGE_SIZE
from ..subnet import Subnet
from ..wire.message import MAX_TOPIC
from .errors import (
    BadMessageId,
    BadRequest,
    BadSubnet,
    BadTopic,
    NotFound,
    PushRefused,
    Unavailable,
)
from .shapes import b64, message_info_json, received_json

if TYPE_CHECKING:
    from ..messages.service import MessageService
    from ..messages.topics import TopicConfig
    from ..node import Node

#: A caller cannot hold a request open longer than this; longer waits are cut to it (the reference
#: takes any u64 of seconds, and its CLI asks for a year when told to wait "forever").
MAX_WAIT = 3600.0
_U64_MAX = 2**64 - 1
#: Digits, optionally with a fraction: no sign, exponent, "nan", "inf" or "1_0" as float() takes.
_SECONDS = re.compile(r"[0-9]{1,20}(\.[0-9]{1,9})?")
#: The base64 text of the largest payload the engine sends (64 MiB).
MAX_PAYLOAD_TEXT = 4 * math.ceil(MAX_MESSAGE_SIZE / 3)
#: Base64 characters decoded per turn of the event loop (a multiple of 4).
_B64_SLICE = 4 * 1024 * 1024
#: The longest path a Unix socket address holds (sun_path, less its terminating NUL).
MAX_SOCKET_PATH = 107


def parse_seconds(value: object, what: str) -> float:
    """A wait in seconds: a number or a digit string from 0 to the largest u64, cut to MAX_WAIT.
    NaN, infinities, negatives, booleans and anything larger are refused
    (docs/api-security.md §4)."""
    seconds = math.nan
    if isinstance(value, str) and _SECONDS.fullmatch(value):
        if int(value.partition(".")[0]) <= _U64_MAX:
            seconds = float(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value <= _U64_MAX:
            seconds = float(value)
    elif isinstance(value, float) and value < 2.0**64:
        seconds = value
    if not (math.isfinite(seconds) and seconds >= 0):
        raise BadRequest(f"{what} must be a whole number of seconds from 0 to 2^64-1")
    return min(seconds, MAX_WAIT)


def _b64decode(text: object, what: str, error: type[BadRequest] = BadRequest) -> bytes:
    if not isinstance(text, str):
        raise error(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not valid base64") from None


def parse_topic(value: object) -> bytes:
    """A base64 topic, or a JSON list of byte values (what the reference's REST server takes
    when adding a topic, though api.yaml documents base64)."""
    if isinstance(value, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b < 256 for b in value
    ):
        return bytes(value)
    return _b64decode(value, "topic", BadTopic)


def _send_info(body: object) -> tuple[bytes, bytes, object]:
    """``{"dst": {"ip"|"pk": ...}, "topic"?, "payload"}`` -> (dst address, topic, payload text)."""
    if not isinstance(body, dict) or not isinstance(body.get("dst"), dict):
        raise BadRequest('expected {"dst": {"ip": ...} or {"pk": ...}, "payload": ...}')
    dst = body["dst"]
    try:
        if "ip" in dst:
            if not isinstance(dst["ip"], str):
                raise TypeError("ip must be a string")
            address = ipaddress.IPv6Address(dst["ip"]).packed
        elif "pk" in dst:
            if not isinstance(dst["pk"], str):
                raise TypeError("pk must be a hex string")
            address = overlay_address(parse_public_key(dst["pk"]))
        else:
            raise BadRequest("dst needs an ip or a pk")
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"bad destination: {exc}") from None
    topic = b"" if body.get("topic") is None else _b64decode(body["topic"], "topic")
    if len(topic) > MAX_TOPIC:
        raise PushRefused(f"topic too large, topic is limited to {MAX_TOPIC} bytes")
    return address, topic, body.get("payload")


async def _payload(text: object) -> bytes:
    """A base64 payload; a large one is decoded a slice at a time, the loop running between
    slices (in one go, 64 MiB would hold it about 0.15 s)."""
    if not isinstance(text, str):
        raise BadRequest("payload must be a base64 string")
    if len(text) > MAX_PAYLOAD_TEXT:
        raise PushRefused(f"payload too large, messages are limited to {MAX_MESSAGE_SIZE} bytes")
    if len(text) <= _B64_SLICE:
        return _b64decode(text, "payload")
    if text.find("=", 0, len(text) - 2) != -1:  # padding may only end the whole text
        raise BadRequest("payload is not valid base64")
    parts = []
    for start in range(0, len(text), _B64_SLICE):
        parts.append(_b64decode(text[start : start + _B64_SLICE], "payload"))
        await asyncio.sleep(0)
    payload = b"".join(parts)
    if len(payload) > MAX_MESSAGE_SIZE:
        raise PushRefused(f"payload too large, messages are limited to {MAX_MESSAGE_SIZE} bytes")
    return payload


def parse_id(text: object) -> bytes:
    try:
        raw = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 8:
        raise BadMessageId("a message id is 16 hex characters")
    return raw


def parse_subnet(text: object) -> Subnet:
    try:
        if isinstance(text, str):
            return Subnet.parse(text)
    except ValueError:
        pass
    raise BadSubnet(f"{text!r} is not a subnet")


def parse_socket_path(value: object) -> str:
    """An absolute path that fits a Unix socket address (docs/api-security.md §5)."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or "\0" in value
        or len(value.encode(errors="replace")) > MAX_SOCKET_PATH
    ):
        raise BadRequest(f"socket_path must be an absolute path of at most {MAX_SOCKET_PATH} bytes")
    return value


def parse_flag(value: object, what: str) -> bool:
    """An optional boolean (absent is false)."""
    if value is None or isinstance(value, bool):
        return value is True
    raise BadRequest(f"{what} must be true or false")


class MessageApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    def _service(self) -> MessageService:
        if self.node.messages is None:
            raise Unavailable("the message subsystem is not running")
        return self.node.messages

    def _topics(self) -> TopicConfig:
        return self._service().engine.topics

    # --- messages -----------------------------------------------------------------------------
    async def push(
        self, message: object, reply_timeout: object = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Send; with ``reply_timeout``, wait for the reply. ({"id": ...}, the reply or None)."""
        dst, topic, text = _send_info(message)
        timeout = None if reply_timeout is None else parse_seconds(reply_timeout, "reply_timeout")
        payload = await _payload(text)
        message_id, reply = await self._service().push(dst, payload, topic, timeout)
        return {"id": message_id.hex()}, None if reply is None else received_json(reply)

    async def pop(
        self, topic: object = None, peek: object = None, timeout: object = None
    ) -> dict[str, Any] | None:
        wanted = None if topic is None else _b64decode(topic, "topic", BadTopic)
        wait = 0.0 if timeout is None else parse_seconds(timeout, "timeout")
        message = await self._service().pop(wanted, parse_flag(peek, "peek"), wait)
        return None if message is None else received_json(message)

    async def reply(self, message_id: object, message: object) -> None:
        reply_to = parse_id(message_id)
        dst, _topic, text = _send_info(message)
        payload = await _payload(text)
        self._service().reply(reply_to, dst, payload)

    def info(self, message_id: object) -> dict[str, Any]:
        status = self._service().status(parse_id(message_id))
        if status is None:
            raise NotFound()
        return message_info_json(status)

    # --- topics -------------------------------------------------------------------------------
    def default_action(self) -> bool:
        return self._topics().accept_by_default

    def set_default_action(self, accept: object) -> None:
        if not isinstance(accept, bool):
            raise BadRequest("accept must be true or false")
        self._topics().accept_by_default = accept

    def topics(self) -> list[str]:
        return [b64(t) for t in self._topics().topics()]

    def add_topic(self, topic: object) -> None:
        self._topics().add_topic(parse_topic(topic))

    def remove_topic(self, topic: object) -> None:
        self._topics().remove_topic(parse_topic(topic))

    def sources(self, topic: object) -> list[str]:
        sources = self._topics().sources(parse_topic(topic))
        if sources is None:
            raise NotFound()
        return [str(s) for s in sources]

    def add_source(self, topic: object, subnet: object) -> None:
        self._topics().add_source(parse_topic(topic), parse_subnet(subnet))

    def remove_source(self, topic: object, subnet: object) -> None:
        self._topics().remove_source(parse_topic(topic), parse_subnet(subnet))

    def forward_socket(self, topic: object) -> str | None:
        return self._topics().forward_socket(parse_topic(topic))

    def set_forward_socket(self, topic: object, path: object) -> None:
        self._topics().set_forward_socket(parse_topic(topic), parse_socket_path(path))

    def remove_forward_socket(self, topic: object) -> None:
        self._topics().set_forward_socket(parse_topic(topic), None)
