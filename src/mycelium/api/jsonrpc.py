"""JSON-RPC 2.0 over HTTP POST (the reference's openrpc.json), sharing the REST facade."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web

from ..proxy import ProxyError, parse_socket_address
from .errors import RpcError
from .facade import BadRequest, Conflict, NodeApi, NotFound
from .messages import MAX_BODY, message_rpc_methods

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
#: Server error codes the reference uses (mycelium-api/src/rpc.rs).
BAD_IP, NO_PUBKEY = -32007, -32008
BAD_ENDPOINT_ADD, PEER_EXISTS, PEER_NOT_FOUND, BAD_ENDPOINT_REMOVE = -32009, -32010, -32011, -32012
NO_PROXY = -32032

log = logging.getLogger(__name__)


def openrpc_document() -> dict[str, Any]:
    """The interface contract we implement, served by ``rpc.discover``."""
    return json.loads(resources.files(__package__).joinpath("openrpc.json").read_text())


def _param(params: Any, index: int, name: str) -> Any:
    """Positional (``[x]``) or named (``{"name": x}``) parameters, as jsonrpsee accepts."""
    if isinstance(params, list) and len(params) > index:
        return params[index]
    if isinstance(params, dict) and name in params:
        return params[name]
    raise RpcError(INVALID_PARAMS, f"missing parameter {name!r}")


def _string(params: Any, index: int, name: str) -> str:
    value = _param(params, index, name)
    if not isinstance(value, str):
        raise RpcError(INVALID_PARAMS, f"parameter {name!r} must be a string")
    return value


class Dispatcher:
    def __init__(self, api: NodeApi) -> None:
        self.api = api
        self.methods: dict[str, Callable[[Any], Any]] = {
            "getInfo": lambda p: api.info(),
            "getPeers": lambda p: api.peers(),
            "addPeer": self._add_peer,
            "deletePeer": self._delete_peer,
            "getSelectedRoutes": lambda p: api.selected_routes(),
            "getFallbackRoutes": lambda p: api.fallback_routes(),
            "getQueriedSubnets": lambda p: api.queried_subnets(),
            "getPublicKeyFromIp": self._pubkey,
            "getPacketStatistics": lambda p: api.packet_statistics(),
            "getProxies": lambda p: api.proxies(),
            "connectProxy": self._connect_proxy,
            "disconnectProxy": self._disconnect_proxy,
            "startProxyProbe": self._start_probe,
            "stopProxyProbe": self._stop_probe,
            "rpc.discover": lambda p: openrpc_document(),
            **message_rpc_methods(api.node, _param),
        }

    async def _connect_proxy(self, params: Any) -> str:
        try:
            remote = _param(params, 0, "remote")
        except RpcError:
            remote = None  # an Option: absent means "pick a discovered proxy"
        if remote is not None:
            try:
                parse_socket_address(remote)
            except ValueError:
                raise RpcError(INVALID_PARAMS, "remote must be an ip:port socket address") from None
        try:
            return await self.api.connect_proxy(remote)
        except ProxyError:
            # The reference maps every failure to this code; jsonrpsee names it "Server error".
            raise RpcError(NO_PROXY, "Server error") from None

    def _start_probe(self, params: Any) -> bool:
        self.api.start_proxy_probe()
        return True

    def _stop_probe(self, params: Any) -> bool:
        self.api.stop_proxy_probe()
        return True

    async def _disconnect_proxy(self, params: Any) -> bool:
        await self.api.disconnect_proxy()
        return True

    def _add_peer(self, params: Any) -> bool:
        try:
            self.api.add_peer(_string(params, 0, "endpoint"))
        except BadRequest as exc:
            raise RpcError(BAD_ENDPOINT_ADD, str(exc)) from None
        except Conflict as exc:
            raise RpcError(PEER_EXISTS, str(exc)) from None
        return True

    def _delete_peer(self, params: Any) -> bool:
        try:
            self.api.remove_peer(_string(params, 0, "endpoint"))
        except BadRequest as exc:
            raise RpcError(BAD_ENDPOINT_REMOVE, str(exc)) from None
        except NotFound as exc:
            raise RpcError(PEER_NOT_FOUND, str(exc)) from None
        return True

    def _pubkey(self, params: Any) -> str:
        try:
            return self.api.public_key(_string(params, 0, "mycelium_ip"))
        except BadRequest as exc:
            raise RpcError(BAD_IP, str(exc)) from None
        except NotFound as exc:
            raise RpcError(NO_PUBKEY, str(exc)) from None

    async def call(self, request: Any) -> dict[str, Any] | None:
        """One request object to one response object (None for a notification)."""
        if (
            not isinstance(request, dict)
            or request.get("jsonrpc") != "2.0"
            or not isinstance(request.get("method"), str)
        ):
            return _error(None, INVALID_REQUEST, "invalid request")
        ident = request.get("id")
        method = self.methods.get(request["method"])
        try:
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, f"method {request['method']!r} not found")
            result = method(request.get("params", []))
            if inspect.isawaitable(result):
                result = await result
        except RpcError as exc:
            return None if "id" not in request else _error(ident, exc.code, exc.message, exc.data)
        except Exception:
            # A bug of ours must not become an HTTP 500 without a JSON-RPC body.
            log.exception("JSON-RPC method %s failed", request["method"])
            return None if "id" not in request else _error(ident, INTERNAL_ERROR, "internal error")
        if "id" not in request:
            return None
        return {"jsonrpc": "2.0", "id": ident, "result": result}


def _error(ident: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    standard = _STANDARD_MESSAGES.get(code)
    if standard is None and SERVER_ERRORS[0] <= code <= SERVER_ERRORS[1]:
        standard = "Server error"
    if standard is not None and standard != message:
        # jsonrpsee's fixed messages, as the reference sends them (every one of its own codes is
        # a bare "Server error"); our reason goes in ``data`` where a person can still read it.
        message, data = standard, message if data is None else data
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": ident, "error": error}


def build_app(api: NodeApi) -> web.Application:
    dispatcher = Dispatcher(api)

    async def handle(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response(_error(None, PARSE_ERROR, "parse error"))
        if isinstance(body, list):
            if not body:
                return web.json_response(_error(None, INVALID_REQUEST, "empty batch"))
            replies = [r for r in [await dispatcher.call(item) for item in body] if r is not None]
            return web.json_response(replies) if replies else web.Response(status=204)
        reply = await dispatcher.call(body)
        return web.json_response(reply) if reply is not None else web.Response(status=204)

    app = web.Application(client_max_size=MAX_BODY)
    app.add_routes([web.post("/", handle), web.post("/rpc", handle)])
    return app
