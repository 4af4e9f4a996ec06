"""JSON-RPC 2.0 over HTTP POST (the reference's openrpc.json), sharing the REST facade.

HTTP as jsonrpsee (the reference's server) answers it: 415 without a JSON media type, 413 with
error -32007 past the body cap, 400 with a parse error when the body does not start as JSON.
Batches hold at most ``MAX_BATCH`` calls (error -32010 otherwise, nothing run), run one call per
turn of the event loop, and stop running calls once their answers pass ``MAX_BATCH_RESPONSE``
(docs/api-security.md §3).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web

from ..proxy import ProxyError
from .errors import (
    BadMessageId,
    BadRequest,
    BadSubnet,
    BadTopic,
    Conflict,
    NotFound,
    PushRefused,
    RpcError,
    Unavailable,
)
from .facade import NodeApi
from .guard import MESSAGE_BODY, Malformed, TooLarge, is_json_type, parse_json, protect, read_capped

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: The implementation-defined range; the reference's own codes all lie in it.
SERVER_ERRORS = (-32099, -32000)
_STANDARD_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
}
#: jsonrpsee's own errors for oversized requests and batches, with their messages.
OVERSIZED_REQUEST, OVERSIZED_REQUEST_MESSAGE = -32007, "Request is too big"
TOO_BIG_BATCH, TOO_BIG_BATCH_MESSAGE = -32010, "The batch request was too large"
TOO_BIG_BATCH_RESPONSE, TOO_BIG_BATCH_RESPONSE_MESSAGE = -32011, "The batch response was too large"

#: Calls in one batch (jsonrpsee's default is unlimited; 200k calls once held the loop 9 s).
MAX_BATCH = 1000
#: Once a batch's answers pass this many bytes, its remaining calls are answered with
#: TOO_BIG_BATCH_RESPONSE instead of being run (jsonrpsee's default response cap is 10 MiB).
MAX_BATCH_RESPONSE = 10 * 1024 * 1024

TOPIC_METHODS = (
    "addTopic",
    "removeTopic",
    "getTopicSources",
    "addTopicSource",
    "removeTopicSource",
    "getTopicForwardSocket",
    "setTopicForwardSocket",
    "removeTopicForwardSocket",
)
#: The facade's refusals as each method's error code (the reference's, mycelium-api/src/rpc.rs),
#: looked up along the exception's class hierarchy; then DEFAULT_ERRORS; anything else is a bug
#: of ours and answers INTERNAL_ERROR.
METHOD_ERRORS: dict[str, dict[type[Exception], int]] = {
    "getPublicKeyFromIp": {BadRequest: -32007, NotFound: -32008},
    "addPeer": {BadRequest: -32009, Conflict: -32010},
    "deletePeer": {BadRequest: -32012, NotFound: -32011},
    "connectProxy": {ProxyError: -32032},
    "popMessage": {BadTopic: -32013},
    "pushMessage": {PushRefused: -32015},
    "pushMessageReply": {BadMessageId: -32018},
    "getMessageInfo": {BadMessageId: -32020, NotFound: -32019},
    **{name: {BadTopic: -32021, BadSubnet: -32023, NotFound: -32030} for name in TOPIC_METHODS},
}
DEFAULT_ERRORS: dict[type[Exception], int] = {
    BadRequest: INVALID_PARAMS,
    Unavailable: INTERNAL_ERROR,
}

log = logging.getLogger(__name__)


def openrpc_document() -> dict[str, Any]:
    """The interface contract we implement, served by ``rpc.discover``."""
    return json.loads(resources.files(__package__).joinpath("openrpc.json").read_text())


def error_code(method: str, exc: Exception) -> int | None:
    for table in (METHOD_ERRORS.get(method, {}), DEFAULT_ERRORS):
        for kind in type(exc).__mro__:
            if kind in table:
                return table[kind]
    return None


def _param(params: Any, index: int, name: str) -> Any:
    """Positional (``[x]``) or named (``{"name": x}``) parameters, as jsonrpsee accepts."""
    if isinstance(params, list) and len(params) > index:
        return params[index]
    if isinstance(params, dict) and name in params:
        return params[name]
    raise RpcError(INVALID_PARAMS, f"missing parameter {name!r}")


def _optional(params: Any, index: int, name: str) -> Any:
    """An ``Option`` parameter: absent or null is None."""
    try:
        return _param(params, index, name)
    except RpcError:
        return None


def _string(params: Any, index: int, name: str) -> str:
    value = _param(params, index, name)
    if not isinstance(value, str):
        raise RpcError(INVALID_PARAMS, f"parameter {name!r} must be a string")
    return value


def _acknowledged(action: Callable[[Any], object]) -> Callable[[Any], Any]:
    """A method whose answer is ``true`` once ``action`` is done."""

    async def run(params: Any) -> bool:
        result = action(params)
        if inspect.isawaitable(result):
            await result
        return True

    return run


class Dispatcher:
    def __init__(self, api: NodeApi) -> None:
        self.api = api
        m = api.messages

        async def connect_proxy(p: Any) -> str:
            return await api.connect_proxy(_optional(p, 0, "remote"))

        async def pop_message(p: Any) -> Any:
            topic = _optional(p, 2, "topic")
            if topic is not None and not isinstance(topic, str):
                raise RpcError(INVALID_PARAMS, "parameter 'topic' must be a string")
            return await m.pop(topic, _optional(p, 0, "peek"), _optional(p, 1, "timeout"))

        async def push_message(p: Any) -> Any:
            message_id, reply = await m.push(
                _param(p, 0, "message"), _optional(p, 1, "reply_timeout")
            )
            # A reply that did not come in time is no error here: the id is the answer.
            return message_id if reply is None else reply

        def topic(p: Any) -> str:
            return _string(p, 0, "topic")

        self.methods: dict[str, Callable[[Any], Any]] = {
            "getInfo": lambda p: api.info(),
            "getPeers": lambda p: api.peers(),
            "addPeer": _acknowledged(lambda p: api.add_peer(_string(p, 0, "endpoint"))),
            "deletePeer": _acknowledged(lambda p: api.remove_peer(_string(p, 0, "endpoint"))),
            "getSelectedRoutes": lambda p: api.selected_routes(),
            "getFallbackRoutes": lambda p: api.fallback_routes(),
            "getQueriedSubnets": lambda p: api.queried_subnets(),
            "getPublicKeyFromIp": lambda p: api.public_key(_string(p, 0, "mycelium_ip")),
            "getPacketStatistics": lambda p: api.packet_statistics(),
            "getProxies": lambda p: api.proxies(),
            "connectProxy": connect_proxy,
            "disconnectProxy": _acknowledged(lambda p: api.disconnect_proxy()),
            "startProxyProbe": _acknowledged(lambda p: api.start_proxy_probe()),
            "stopProxyProbe": _acknowledged(lambda p: api.stop_proxy_probe()),
            "popMessage": pop_message,
            "pushMessage": push_message,
            "pushMessageReply": _acknowledged(
                lambda p: m.reply(_string(p, 0, "id"), _param(p, 1, "message"))
            ),
            "getMessageInfo": lambda p: m.info(_string(p, 0, "id")),
            "getDefaultTopicAction": lambda p: m.default_action(),
            "setDefaultTopicAction": _acknowledged(
                lambda p: m.set_default_action(_param(p, 0, "accept"))
            ),
            "getTopics": lambda p: m.topics(),
            "addTopic": _acknowledged(lambda p: m.add_topic(topic(p))),
            "removeTopic": _acknowledged(lambda p: m.remove_topic(topic(p))),
            "getTopicSources": lambda p: m.sources(topic(p)),
            "addTopicSource": _acknowledged(
                lambda p: m.add_source(topic(p), _string(p, 1, "subnet"))
            ),
            "removeTopicSource": _acknowledged(
                lambda p: m.remove_source(topic(p), _string(p, 1, "subnet"))
            ),
            "getTopicForwardSocket": lambda p: m.forward_socket(topic(p)),
            "setTopicForwardSocket": _acknowledged(
                lambda p: m.set_forward_socket(topic(p), _string(p, 1, "socket_path"))
            ),
            "removeTopicForwardSocket": _acknowledged(lambda p: m.remove_forward_socket(topic(p))),
            "rpc.discover": lambda p: openrpc_document(),
        }

    async def call(self, request: Any) -> dict[str, Any] | None:
        """One request object to one response object (None for a notification)."""
        if (
            not isinstance(request, dict)
            or request.get("jsonrpc") != "2.0"
            or not isinstance(request.get("method"), str)
        ):
            return _error(None, INVALID_REQUEST, "invalid request")
        name, ident = request["method"], request.get("id")
        method = self.methods.get(name)
        try:
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, f"method {name!r} not found")
            result = method(request.get("params", []))
            if inspect.isawaitable(result):
                result = await result
        except RpcError as exc:
            reply = _error(ident, exc.code, exc.message, data=exc.data)
        except Exception as exc:
            code = error_code(name, exc)
            if code is None:
                # A bug of ours must not become an HTTP 500 without a JSON-RPC body.
                log.exception("JSON-RPC method %s failed", name)
                code = INTERNAL_ERROR
            reply = _error(ident, code, str(exc) or None)
        else:
            reply = {"jsonrpc": "2.0", "id": ident, "result": result}
        return reply if "id" in request else None

    async def batch(self, calls: list[Any]) -> list[bytes]:
        """Each call's encoded answer (notifications have none), one call per loop turn."""
        if len(calls) > MAX_BATCH:
            limit = f"Exceeded max limit of {MAX_BATCH}"
            return [_encode(_error(None, TOO_BIG_BATCH, message=TOO_BIG_BATCH_MESSAGE, data=limit))]
        answers: list[bytes] = []
        size = 0
        for request in calls:
            if size > MAX_BATCH_RESPONSE:
                ident = request.get("id") if isinstance(request, dict) else None
                limit = f"Exceeded max limit of {MAX_BATCH_RESPONSE}"
                reply = _error(
                    ident,
                    TOO_BIG_BATCH_RESPONSE,
                    message=TOO_BIG_BATCH_RESPONSE_MESSAGE,
                    data=limit,
                )
                if not (isinstance(request, dict) and "id" not in request):
                    answers.append(_encode(reply))
                continue
            answer = await self.call(request)
            if answer is not None:
                answers.append(_encode(answer))
                size += len(answers[-1])
            await asyncio.sleep(0)  # let the loop serve others between calls
        return answers


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error(
    ident: Any, code: int, reason: str | None = None, *, message: str = "", data: Any = None
) -> dict[str, Any]:
    """An error object. Without an explicit ``message``, standard codes and the reference's
    server codes (jsonrpsee names them all "Server error") carry their fixed message, and our
    ``reason`` goes in ``data``, where a person can still read it."""
    if not message:
        message = _STANDARD_MESSAGES.get(code) or (
            "Server error" if SERVER_ERRORS[0] <= code <= SERVER_ERRORS[1] else reason or ""
        )
        if reason is not None and reason != message and data is None:
            data = reason
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": ident, "error": error}


def _json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def build_app(api: NodeApi) -> web.Application:
    dispatcher = Dispatcher(api)

    async def handle(request: web.Request) -> web.Response:
        if not is_json_type(request.content_type):
            return web.Response(
                status=415,
                text="Supplied content type is not allowed. "
                "Content-Type: application/json is required\n",
            )
        try:
            raw = await read_capped(request, MESSAGE_BODY)
            if raw.lstrip()[:1] not in (b"{", b"["):
                return _json_response(_encode(_error(None, PARSE_ERROR)), 400)
            body = parse_json(raw)
        except TooLarge as exc:
            limit = f"Exceeded max limit of {exc.limit}"
            too_big = _error(None, OVERSIZED_REQUEST, message=OVERSIZED_REQUEST_MESSAGE, data=limit)
            return _json_response(_encode(too_big), 413)
        except Malformed as exc:
            return _json_response(_encode(_error(None, PARSE_ERROR, exc.reason)))
        if isinstance(body, list):
            if not body:
                return _json_response(_encode(_error(None, INVALID_REQUEST, "empty batch")))
            answers = await dispatcher.batch(body)
            if not answers:
                return web.Response(status=204)
            return _json_response(b"[" + b",".join(answers) + b"]")
        reply = await dispatcher.call(body)
        return _json_response(_encode(reply)) if reply is not None else web.Response(status=204)

    app = web.Application(client_max_size=MESSAGE_BODY)
    protect(app)
    app.add_routes([web.post("/", handle), web.post("/rpc", handle)])
    return app
