"""The message endpoints of the REST API and the message methods of JSON-RPC (api.yaml,
openrpc.json): base64 payloads and topics, destinations by ``ip`` or ``pk``, replies, status and
topic configuration."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..identity import overlay_address, parse_public_key
from ..messages.engine import ReceivedMessage
from ..subnet import Subnet
from .errors import RpcError
from .facade import BadRequest, NotFound

if TYPE_CHECKING:
    from ..messages.service import MessageService
    from ..node import Node

#: How long the reference keeps trying to deliver a message pushed through the API.
DEFAULT_TRY_DURATION = 300.0
#: Request bodies carry base64 payloads of messages up to the engine's 64 MiB limit.
MAX_BODY = 96 * 1024 * 1024
#: A client cannot make the server hold a request open for longer than this.
MAX_WAIT = 3600.0


def _b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BadRequest(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{what} is not valid base64") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def received_json(m: ReceivedMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": m.id.hex(),
        "srcIp": str(ipaddress.IPv6Address(m.src_ip)),
        "srcPk": m.src_pk.hex(),
        "dstIp": str(ipaddress.IPv6Address(m.dst_ip)),
        "dstPk": m.dst_pk.hex(),
    }
    if m.topic:
        body["topic"] = _b64(m.topic)
    body["payload"] = _b64(m.data)
    return body


def parse_send_info(body: Any) -> tuple[bytes, bytes, bytes]:
    """``{"dst": {"ip"|"pk": ...}, "topic"?, "payload"}`` -> (dst address, topic, payload)."""
    if not isinstance(body, dict) or not isinstance(body.get("dst"), dict):
        raise BadRequest('expected {"dst": {"ip": ...} or {"pk": ...}, "payload": ...}')
    dst = body["dst"]
    try:
        if "ip" in dst:
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
    if len(topic) > 255:
        raise BadRequest("topic too large, topic is limited to 255 bytes")
    return address, topic, _b64decode(body.get("payload"), "payload")


def parse_id(text: Any) -> bytes:
    try:
        raw = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 8:
        raise BadRequest("a message id is 16 hex characters")
    return raw


def parse_subnet(text: Any) -> Subnet:
    try:
        return Subnet.parse(str(text))
    except ValueError:
        raise BadRequest(f"{text!r} is not a subnet") from None


def _service(node: Node) -> MessageService:
    if node.messages is None:
        raise NotFound("the message subsystem is not running")
    return node.messages


def _wait(value: Any, what: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{what} must be a number of seconds") from None
    if seconds < 0:
        raise BadRequest(f"{what} must not be negative")
    return min(seconds, MAX_WAIT)


def _query_bool(value: str | None) -> bool:
    if value in (None, "", "false"):
        return False
    if value == "true":
        return True
    raise BadRequest("expected true or false")


def add_message_routes(app: web.Application, node: Node) -> None:
    async def push(request: web.Request) -> web.Response:
        dst, topic, payload = parse_send_info(await _json(request))
        raw_timeout = request.query.get("reply_timeout")
        timeout = None if raw_timeout is None else _wait(raw_timeout, "reply_timeout")
        message_id, reply = await _service(node).push(dst, payload, topic, timeout)
        if timeout is None:
            return web.json_response({"id": message_id.hex()}, status=201)
        if reply is None:
            return web.json_response({"id": message_id.hex()}, status=408)
        return web.json_response(received_json(reply))

    async def pop(request: web.Request) -> web.Response:
        query = request.query
        topic = None if "topic" not in query else _b64decode(query["topic"], "topic")
        message = await _service(node).pop(
            topic, _query_bool(query.get("peek")), _wait(query.get("timeout", 0), "timeout")
        )
        if message is None:
            return web.Response(status=204)
        return web.json_response(received_json(message))

    async def reply(request: web.Request) -> web.Response:
        reply_to = parse_id(request.match_info["id"])
        dst, _topic, payload = parse_send_info(await _json(request))
        _service(node).reply(reply_to, dst, payload)
        return web.Response(status=204)

    async def status(request: web.Request) -> web.Response:
        info = _service(node).status(parse_id(request.match_info["id"]))
        if info is None:
            return web.Response(status=404)
        return web.json_response(info)

    def topics() -> Any:
        return _service(node).engine.topics

    def topic_of(request: web.Request) -> bytes:
        return _b64decode(request.match_info["topic"], "topic")

    async def get_default(_: web.Request) -> web.Response:
        return web.json_response({"accept": topics().accept_by_default})

    async def set_default(request: web.Request) -> web.Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("accept"), bool):
            raise BadRequest('expected {"accept": true|false}')
        topics().accept_by_default = body["accept"]
        return web.Response(status=204)

    async def list_topics(_: web.Request) -> web.Response:
        return web.json_response([_b64(t) for t in topics().topics()])

    async def add_topic(request: web.Request) -> web.Response:
        body = await _json(request)
        # The reference's server takes a JSON byte array here; api.yaml documents base64.
        if isinstance(body, list) and all(isinstance(b, int) and 0 <= b < 256 for b in body):
            topic = bytes(body)
        else:
            topic = _b64decode(body, "topic")
        topics().add_topic(topic)
        return web.Response(status=201)

    async def remove_topic(request: web.Request) -> web.Response:
        topics().remove_topic(topic_of(request))
        return web.Response(status=204)

    async def get_sources(request: web.Request) -> web.Response:
        sources = topics().sources(topic_of(request))
        if sources is None:
            return web.Response(status=404)
        return web.json_response([str(s) for s in sources])

    async def add_source(request: web.Request) -> web.Response:
        topic = topic_of(request)
        body = await _json(request)
        subnet = parse_subnet(body.get("subnet") if isinstance(body, dict) else None)
        topics().add_source(topic, subnet)
        return web.Response(status=204)

    async def remove_source(request: web.Request) -> web.Response:
        topics().remove_source(topic_of(request), parse_subnet(request.match_info["subnet"]))
        return web.Response(status=204)

    async def get_forward(request: web.Request) -> web.Response:
        return web.json_response(topics().forward_socket(topic_of(request)))

    async def set_forward(request: web.Request) -> web.Response:
        topic = topic_of(request)
        body = await _json(request)
        path = body.get("socket_path") if isinstance(body, dict) else None
        if not isinstance(path, str):
            raise BadRequest('expected {"socket_path": "..."}')
        topics().set_forward_socket(topic, path)
        return web.Response(status=204)

    async def remove_forward(request: web.Request) -> web.Response:
        topics().set_forward_socket(topic_of(request), None)
        return web.Response(status=204)

    base = "/api/v1/messages"
    app.add_routes(
        [
            web.get(base, pop),
            web.post(base, push),
            web.post(base + "/reply/{id}", reply),
            web.get(base + "/status/{id}", status),
            web.get(base + "/topics/default", get_default),
            web.put(base + "/topics/default", set_default),
            web.get(base + "/topics", list_topics),
            web.post(base + "/topics", add_topic),
            web.delete(base + "/topics/{topic}", remove_topic),
            web.get(base + "/topics/{topic}/sources", get_sources),
            web.post(base + "/topics/{topic}/sources", add_source),
            web.delete(base + "/topics/{topic}/sources/{subnet:.+}", remove_source),
            web.get(base + "/topics/{topic}/forward", get_forward),
            web.put(base + "/topics/{topic}/forward", set_forward),
            web.delete(base + "/topics/{topic}/forward", remove_forward),
        ]
    )


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None


# --- JSON-RPC ----------------------------------------------------------------------------------

#: Error codes the reference's message methods use (mycelium-api/src/rpc.rs).
BAD_TOPIC = -32013
PUSH_FAILED = -32015
REPLY_TIMEOUT = -32016
BAD_REPLY_ID = -32018
MESSAGE_NOT_FOUND = -32019
BAD_MESSAGE_ID = -32020


def message_rpc_methods(node: Node, param: Callable[[Any, int, str], Any]) -> dict[str, Any]:
    """Method name -> async function of the request params."""

    def rpc_call(fn: Callable[..., Any]) -> Callable[..., Any]:
        async def run(params: Any) -> Any:
            try:
                return await fn(params)
            except BadRequest as exc:
                raise RpcError(-32602, str(exc)) from None
            except NotFound as exc:
                raise RpcError(PUSH_FAILED, str(exc)) from None

        return run

    def optional(params: Any, index: int, name: str) -> Any:
        try:
            return param(params, index, name)
        except RpcError:
            return None

    async def pop_message(params: Any) -> Any:
        peek = optional(params, 0, "peek") is True
        timeout = _wait(optional(params, 1, "timeout") or 0, "timeout")
        raw_topic = optional(params, 2, "topic")
        topic = None if raw_topic is None else topic_param(params, 2)
        message = await _service(node).pop(topic, peek, timeout)
        return None if message is None else received_json(message)

    async def push_message(params: Any) -> Any:
        dst, topic, payload = parse_send_info(param(params, 0, "message"))
        raw_timeout = optional(params, 1, "reply_timeout")
        timeout = None if raw_timeout is None else _wait(raw_timeout, "reply_timeout")
        message_id, reply = await _service(node).push(dst, payload, topic, timeout)
        if timeout is not None and reply is None:
            raise RpcError(REPLY_TIMEOUT, "timeout waiting for reply", {"id": message_id.hex()})
        return {"id": message_id.hex()} if reply is None else received_json(reply)

    async def push_reply(params: Any) -> Any:
        try:
            reply_to = parse_id(param(params, 0, "id"))
        except BadRequest as exc:
            raise RpcError(BAD_REPLY_ID, str(exc)) from None
        dst, _topic, payload = parse_send_info(param(params, 1, "message"))
        _service(node).reply(reply_to, dst, payload)
        return True

    async def message_info(params: Any) -> Any:
        try:
            message_id = parse_id(param(params, 0, "id"))
        except BadRequest as exc:
            raise RpcError(BAD_MESSAGE_ID, str(exc)) from None
        info = _service(node).status(message_id)
        if info is None:
            raise RpcError(MESSAGE_NOT_FOUND, "message not found")
        return info

    def topic_param(params: Any, index: int = 0) -> bytes:
        try:
            return _b64decode(param(params, index, "topic"), "topic")
        except BadRequest as exc:
            raise RpcError(BAD_TOPIC, str(exc)) from None

    def topics() -> Any:
        return _service(node).engine.topics

    async def get_default(params: Any) -> Any:
        return topics().accept_by_default

    async def set_default(params: Any) -> Any:
        accept = param(params, 0, "accept")
        if not isinstance(accept, bool):
            raise BadRequest("accept must be a boolean")
        topics().accept_by_default = accept
        return True

    async def get_topics(params: Any) -> Any:
        return [_b64(t) for t in topics().topics()]

    async def add_topic(params: Any) -> Any:
        topics().add_topic(topic_param(params))
        return True

    async def remove_topic(params: Any) -> Any:
        topics().remove_topic(topic_param(params))
        return True

    async def get_sources(params: Any) -> Any:
        sources = topics().sources(topic_param(params))
        return [] if sources is None else [str(s) for s in sources]

    async def add_source(params: Any) -> Any:
        topics().add_source(topic_param(params), parse_subnet(param(params, 1, "subnet")))
        return True

    async def remove_source(params: Any) -> Any:
        topics().remove_source(topic_param(params), parse_subnet(param(params, 1, "subnet")))
        return True

    async def get_forward(params: Any) -> Any:
        return topics().forward_socket(topic_param(params))

    async def set_forward(params: Any) -> Any:
        path = param(params, 1, "socket_path")
        if not isinstance(path, str):
            raise BadRequest("socket_path must be a string")
        topics().set_forward_socket(topic_param(params), path)
        return True

    async def remove_forward(params: Any) -> Any:
        topics().set_forward_socket(topic_param(params), None)
        return True

    methods = {
        "popMessage": pop_message,
        "pushMessage": push_message,
        "pushMessageReply": push_reply,
        "getMessageInfo": message_info,
        "getDefaultTopicAction": get_default,
        "setDefaultTopicAction": set_default,
        "getTopics": get_topics,
        "addTopic": add_topic,
        "removeTopic": remove_topic,
        "getTopicSources": get_sources,
        "addTopicSource": add_source,
        "removeTopicSource": remove_source,
        "getTopicForwardSocket": get_forward,
        "setTopicForwardSocket": set_forward,
        "removeTopicForwardSocket": remove_forward,
    }
    return {name: rpc_call(fn) for name, fn in methods.items()}
