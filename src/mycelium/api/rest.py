"""The REST API under ``/api/v1`` (the reference's api.yaml), on aiohttp.

Handlers only carry values between HTTP and the facade; the facade's typed refusals become
status codes in ``_errors`` (one table), with the reference's status for each endpoint.
A dashboard may be served from the root later: it is same-origin, so the guard lets it in.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..proxy import ProxyError, ProxyTargetRefused
from .dashboard import add_dashboard_routes
from .errors import BadRequest, Conflict, NotFound, Unavailable
from .facade import NodeApi
from .guard import MESSAGE_BODY, BodyRefused, Handler, protect, read_json
from .status import add_status_routes

#: The facade's refusals as HTTP statuses; the reason goes in a text body when there is one.
STATUS: dict[type[Exception], int] = {
    BadRequest: 400,
    NotFound: 404,
    Conflict: 409,
    Unavailable: 503,
}
_REFUSALS = tuple(STATUS)


def _status_of(exc: Exception) -> int:
    return next(STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BodyRefused as exc:
        return web.Response(status=exc.status, text=exc.reason)
    except _REFUSALS as exc:
        status = _status_of(exc)
        return (
            web.Response(status=status, text=str(exc)) if str(exc) else web.Response(status=status)
        )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _no_content() -> web.Response:
    return web.Response(status=204)


def _unprocessable(expected: str) -> web.Response:
    """A body of the wrong shape, as axum's ``Json`` extractor refuses it."""
    return web.Response(
        status=422, text=f"Failed to deserialize the JSON body into the target type: {expected}"
    )


def _query_flag(value: str | None) -> bool:
    if value in (None, "", "false"):
        return False
    if value == "true":
        return True
    raise BadRequest("expected true or false")


def _member(body: Any, name: str) -> Any:
    return body.get(name) if isinstance(body, dict) else None


def build_app(api: NodeApi) -> web.Application:
    messages = api.messages

    # --- admin --------------------------------------------------------------------------------
    async def get_info(_: web.Request) -> web.Response:
        return _json(api.info())

    async def get_peers(_: web.Request) -> web.Response:
        return _json(api.peers())

    async def add_peer(request: web.Request) -> web.Response:
        endpoint = _member(await read_json(request), "endpoint")
        if not isinstance(endpoint, str):
            return _unprocessable('expected {"endpoint": "<endpoint>"}')
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
        return _json({"publicKey": api.public_key(request.match_info["ip"])})

    async def nat(_: web.Request) -> web.Response:
        return _json(api.nat())

    async def list_proxies(_: web.Request) -> web.Response:
        return _json(api.proxies())

    async def connect_proxy(request: web.Request) -> web.Response:
        body = await read_json(request)
        expected = 'expected {"remote": "<ip>:<port>" or null}'
        if not isinstance(body, dict):
            return _unprocessable(expected)
        try:
            return _json(await api.connect_proxy(body.get("remote")))
        except BadRequest:
            return _unprocessable(expected)
        except ProxyTargetRefused as exc:
            return web.Response(status=403, text=str(exc))
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

    # --- messages -----------------------------------------------------------------------------
    async def push(request: web.Request) -> web.Response:
        body = await read_json(request, MESSAGE_BODY)
        wait = request.query.get("reply_timeout")
        message_id, reply = await messages.push(body, wait)
        if reply is not None:
            return _json(reply)
        return _json(message_id, 201 if wait is None else 408)

    async def pop(request: web.Request) -> web.Response:
        query = request.query
        message = await messages.pop(
            query.get("topic"), _query_flag(query.get("peek")), query.get("timeout")
        )
        return _no_content() if message is None else _json(message)

    async def reply(request: web.Request) -> web.Response:
        await messages.reply(request.match_info["id"], await read_json(request, MESSAGE_BODY))
        return _no_content()

    async def status(request: web.Request) -> web.Response:
        return _json(messages.info(request.match_info["id"]))

    async def get_default(_: web.Request) -> web.Response:
        return _json({"accept": messages.default_action()})

    async def set_default(request: web.Request) -> web.Response:
        messages.set_default_action(_member(await read_json(request), "accept"))
        return _no_content()

    async def list_topics(_: web.Request) -> web.Response:
        return _json(messages.topics())

    async def add_topic(request: web.Request) -> web.Response:
        messages.add_topic(await read_json(request))
        return web.Response(status=201)

    async def remove_topic(request: web.Request) -> web.Response:
        messages.remove_topic(request.match_info["topic"])
        return _no_content()

    async def get_sources(request: web.Request) -> web.Response:
        return _json(messages.sources(request.match_info["topic"]))

    async def add_source(request: web.Request) -> web.Response:
        topic = request.match_info["topic"]
        messages.add_source(topic, _member(await read_json(request), "subnet"))
        return _no_content()

    async def remove_source(request: web.Request) -> web.Response:
        messages.remove_source(request.match_info["topic"], request.match_info["subnet"])
        return _no_content()

    async def get_forward(request: web.Request) -> web.Response:
        return _json(messages.forward_socket(request.match_info["topic"]))

    async def set_forward(request: web.Request) -> web.Response:
        topic = request.match_info["topic"]
        messages.set_forward_socket(topic, _member(await read_json(request), "socket_path"))
        return _no_content()

    async def remove_forward(request: web.Request) -> web.Response:
        messages.remove_forward_socket(request.match_info["topic"])
        return _no_content()

    app = web.Application(client_max_size=MESSAGE_BODY, middlewares=[_errors])
    protect(app)
    admin, msg = "/api/v1/admin", "/api/v1/messages"
    app.add_routes(
        [
            web.get(admin, get_info),
            web.get(admin + "/peers", get_peers),
            web.post(admin + "/peers", add_peer),
            web.delete(admin + "/peers/{endpoint:.+}", delete_peer),
            web.get(admin + "/routes/selected", selected),
            web.get(admin + "/routes/fallback", fallback),
            web.get(admin + "/routes/queried", queried),
            web.get(admin + "/stats/packets", packet_stats),
            web.get(admin + "/proxy", list_proxies),
            web.post(admin + "/proxy", connect_proxy),
            web.delete(admin + "/proxy", disconnect_proxy),
            web.get(admin + "/proxy/probe", start_probe),
            web.delete(admin + "/proxy/probe", stop_probe),
            web.get("/api/v1/pubkey/{ip}", pubkey),
            web.get(msg, pop),
            web.post(msg, push),
            web.post(msg + "/reply/{id}", reply),
            web.get(msg + "/status/{id}", status),
            web.get(msg + "/topics/default", get_default),
            web.put(msg + "/topics/default", set_default),
            web.get(msg + "/topics", list_topics),
            web.post(msg + "/topics", add_topic),
            web.delete(msg + "/topics/{topic}", remove_topic),
            web.get(msg + "/topics/{topic}/sources", get_sources),
            web.post(msg + "/topics/{topic}/sources", add_source),
            web.delete(msg + "/topics/{topic}/sources/{subnet:.+}", remove_source),
            web.get(msg + "/topics/{topic}/forward", get_forward),
            web.put(msg + "/topics/{topic}/forward", set_forward),
            web.delete(msg + "/topics/{topic}/forward", remove_forward),
            # pymycelium's own, read-only (docs/nat.md).
            web.get("/api/v1/pymycelium/nat", nat),
        ]
    )
    add_dashboard_routes(app, api)
    add_status_routes(app, api)
    return app
