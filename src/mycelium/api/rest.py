"""The REST API under ``/api/v1`` (the reference's api.yaml), on aiohttp."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..proxy import ProxyError, parse_socket_address
from .dashboard import add_dashboard_routes
from .facade import BadRequest, Conflict, NodeApi, NotFound
from .messages import MAX_BODY, add_message_routes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any) -> web.Response:
    return web.json_response(data)


def _no_content() -> web.Response:
    return web.Response(status=204)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Typed refusals become the reference's status codes with a plain-text reason."""
    try:
        return await handler(request)
    except BadRequest as exc:
        return web.Response(status=400, text=str(exc))
    except Conflict as exc:
        return web.Response(status=409, text=str(exc))
    except NotFound as exc:
        return web.Response(status=404, text=str(exc))


def _is_socket_address(value: Any) -> bool:
    try:
        parse_socket_address(value)
    except ValueError:
        return False
    return True


async def _json_body(request: web.Request) -> Any:
    """A JSON body refused as axum's ``Json`` extractor refuses it: 415 without a JSON content
    type, 400 when it does not parse (a 422 for the wrong shape is the handler's)."""
    ctype = request.content_type
    if not (
        ctype == "application/json"
        or (ctype.startswith("application/") and ctype.endswith("+json"))
    ):
        raise web.HTTPUnsupportedMediaType(
            text="Expected request with `Content-Type: application/json`"
        )
    try:
        return json.loads(await request.read())
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"Failed to parse the request body as JSON: {exc}") from None


def build_app(api: NodeApi) -> web.Application:
    async def get_info(_: web.Request) -> web.Response:
        return _json(api.info())

    async def get_peers(_: web.Request) -> web.Response:
        return _json(api.peers())

    async def add_peer(request: web.Request) -> web.Response:
        body = await _json_body(request)
        endpoint = body.get("endpoint") if isinstance(body, dict) else None
        if not isinstance(endpoint, str):
            return web.Response(
                status=422,
                text="Failed to deserialize the JSON body into the target type: "
                'expected {"endpoint": "<endpoint>"}',
            )
        api.add_peer(endpoint)
        return _no_content()

    async def delete_peer(request: web.Request) -> web.Response:
        api.remove_peer(request.match_info["endpoint"])
        return _no_content()

    async def selected(_: web.Request) -> web.Response:
        return _json(api.selected_routes())

    async def fallback(_: web.Request) -> web.Response:
        return _json(api.fallback_routes())

    async def queried(_: web.Request) -> web.Response:
        return _json(api.queried_subnets())

    async def packet_stats(_: web.Request) -> web.Response:
        return _json(api.packet_statistics())

    async def pubkey(request: web.Request) -> web.Response:
        try:
            key = api.public_key(request.match_info["ip"])
        except NotFound:
            return web.Response(status=404)
        except BadRequest as exc:
            return web.Response(status=400, text=str(exc))
        return _json({"publicKey": key})

    async def list_proxies(_: web.Request) -> web.Response:
        return _json(api.proxies())

    async def connect_proxy(request: web.Request) -> web.Response:
        body = await _json_body(request)
        remote = body.get("remote") if isinstance(body, dict) else None
        if not isinstance(body, dict) or (remote is not None and not _is_socket_address(remote)):
            return web.Response(
                status=422,
                text="Failed to deserialize the JSON body into the target type: "
                'expected {"remote": "<ip>:<port>" or null}',
            )
        try:
            return _json(await api.connect_proxy(remote))
        except ProxyError:
            return web.Response(status=404)  # any failure, with an empty body, as the reference

    async def disconnect_proxy(_: web.Request) -> web.Response:
        await api.disconnect_proxy()
        return _no_content()

    async def start_probe(_: web.Request) -> web.Response:
        api.start_proxy_probe()
        return _no_content()

    async def stop_probe(_: web.Request) -> web.Response:
        api.stop_proxy_probe()
        return _no_content()

    app = web.Application(client_max_size=MAX_BODY, middlewares=[_errors])
    app.add_routes(
        [
            web.get("/api/v1/admin", get_info),
            web.get("/api/v1/admin/peers", get_peers),
            web.post("/api/v1/admin/peers", add_peer),
            web.delete("/api/v1/admin/peers/{endpoint:.+}", delete_peer),
            web.get("/api/v1/admin/routes/selected", selected),
            web.get("/api/v1/admin/routes/fallback", fallback),
            web.get("/api/v1/admin/routes/queried", queried),
            web.get("/api/v1/admin/stats/packets", packet_stats),
            web.get("/api/v1/admin/proxy", list_proxies),
            web.post("/api/v1/admin/proxy", connect_proxy),
            web.delete("/api/v1/admin/proxy", disconnect_proxy),
            web.get("/api/v1/admin/proxy/probe", start_probe),
            web.delete("/api/v1/admin/proxy/probe", stop_probe),
            web.get("/api/v1/pubkey/{ip}", pubkey),
        ]
    )
    add_message_routes(app, api.node)
    add_dashboard_routes(app, api)
    return app
