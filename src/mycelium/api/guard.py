"""Who may talk to the local API, and what a request body may be (docs/api-security.md §1, §2).

The node runs as root and its API listens on loopback, where every web page its user opens can
send it requests. Every server (REST, JSON-RPC, metrics) refuses with 403, before any handler runs:

* a ``Host`` that is not a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``, any port) or
  the IP address the connection reached: a page on a rebound DNS name (DNS rebinding) could
  otherwise read our answers;
* an ``Origin`` other than the API's own (``http://`` + the Host the request was sent to), and
  ``Origin: null``: a cross-site page;
* ``Sec-Fetch-Site`` other than ``same-origin`` or ``none``: a cross-site page's GET carries no
  Origin, and some of our GETs act (popping a message, starting proxy probes).

No CORS headers are ever sent, so a browser lets no other origin read an answer or send a
non-simple request. Request bodies are JSON only under a JSON media type (a cross-site form can
only send ``text/plain``, form or multipart bodies without asking first), read up to a cap per
endpoint, and parsed strictly (``NaN``/``Infinity`` refused, deep nesting and huge value counts
refused as malformed instead of exhausting the stack or memory).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .messages import MAX_PAYLOAD_TEXT

log = logging.getLogger(__name__)

#: Host names that always mean this machine; IP literals are compared with the connection.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: Fetch metadata values a browser sends for our own pages and for typed-in URLs.
SAME_ORIGIN_FETCHES = frozenset({"same-origin", "none"})

#: Every body but a message's: peers, topics, subnets, proxy targets are a few hundred bytes.
SMALL_BODY = 64 * 1024
#: A message's body: its payload in base64 (the engine's 64 MiB limit) plus room for the rest.
MESSAGE_BODY = MAX_PAYLOAD_TEXT + SMALL_BODY
#: Bodies larger than this must hold at most ``MAX_JSON_VALUES`` containers and list items:
#: an 85 MiB body of ``[{},{},...`` would otherwise become ~30 million Python objects.
COUNTED_BODY = 1024 * 1024
MAX_JSON_VALUES = 50_000

#: The media types taken as JSON: what axum's ``Json`` and jsonrpsee accept. None of them is one
#: a browser may send across sites without a preflight, which we never answer.
JSON_TYPES = frozenset({"application/json", "application/json-rpc"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyRefused(Exception):
    """A request body refused before any handler saw it; ``status`` is the HTTP status."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotJson(BodyRefused):
    status = 415


class TooLarge(BodyRefused):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class Malformed(BodyRefused):
    status = 400


def split_host(value: str) -> tuple[str, int | None] | None:
    """A Host or Origin authority (``name``, ``name:port``, ``[v6]``, ``[v6]:port``) as
    (lower-case host without brackets, port); None when it is not one."""
    value = value.strip().lower()
    port_text = ""
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    else:
        host, _, port_text = value.partition(":")
        if ":" in port_text:
            return None
    if not host or (port_text and not (port_text.isdigit() and int(port_text) <= 0xFFFF)):
        return None
    return host, int(port_text) if port_text else None


def _same_ip(name: str, local: str | None) -> bool:
    """``name`` is an IP literal equal to the address the connection reached."""
    if local is None:
        return False
    try:
        ip = ipaddress.ip_address(name)
        here = ipaddress.ip_address(local.partition("%")[0])
    except ValueError:
        return False
    if isinstance(here, ipaddress.IPv6Address) and here.ipv4_mapped is not None:
        here = here.ipv4_mapped  # an IPv4 client of a dual-stack socket
    return ip == here


def host_allowed(host_header: str | None, local_ip: str | None) -> bool:
    """Loopback names, or the IP the client connected to. Any other name may be an attacker's,
    resolving to 127.0.0.1 (DNS rebinding); without a Host header no browser is involved."""
    if host_header is None:
        return True
    parsed = split_host(host_header)
    if parsed is None:
        return False
    return parsed[0] in LOOPBACK_NAMES or _same_ip(parsed[0], local_ip)


def origin_allowed(origin: str, host_header: str | None) -> bool:
    """Our own origin: ``http://`` and the authority the request was sent to (port 80 implied)."""
    if host_header is None:
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme != "http" or parts.path or parts.query or parts.fragment:
        return False
    theirs, ours = split_host(parts.netloc), split_host(host_header)
    if theirs is None or ours is None:
        return False
    return theirs[0] == ours[0] and (theirs[1] or 80) == (ours[1] or 80)


def refusal(request: web.Request) -> str | None:
    """Why a request must be refused (403), or None."""
    host = request.headers.get("Host")
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    local = str(sockname[0]) if sockname else None
    if not host_allowed(host, local):
        return "Host not allowed: use localhost, 127.0.0.1, [::1] or the address listened on"
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, host):
        return "cross-origin requests are not allowed"
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in SAME_ORIGIN_FETCHES:
        return "cross-site requests are not allowed"
    return None


class _Throttle:
    """At most one warning a minute about refused requests; the rest go to debug."""

    def __init__(self) -> None:
        self.next_warning = 0.0

    def report(self, request: web.Request, reason: str) -> None:
        level = logging.DEBUG
        now = time.monotonic()
        if now >= self.next_warning:
            self.next_warning = now + 60.0
            level = logging.WARNING
        log.log(
            level,
            "API refused %s %s (Host %r, Origin %r): %s",
            request.method,
            request.path,
            request.headers.get("Host"),
            request.headers.get("Origin"),
            reason,
        )


def protect(app: web.Application) -> None:
    """Install the origin checks on ``app`` (before it starts); every answer gets ``nosniff``."""
    throttle = _Throttle()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        reason = refusal(request)
        if reason is not None:
            throttle.report(request, reason)
            return web.Response(status=403, text=reason + "\n")
        return await handler(request)

    async def nosniff(_: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Content-Type-Options"] = "nosniff"

    app.middlewares.insert(0, guard)
    app.on_response_prepare.append(nosniff)


def is_json_type(content_type: str) -> bool:
    return content_type in JSON_TYPES or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


async def read_capped(request: web.Request, limit: int) -> bytearray:
    """The body, or TooLarge as soon as it (or its announced length) passes ``limit``. A body
    over COUNTED_BODY holding more than MAX_JSON_VALUES containers and members is Malformed; they
    are counted chunk by chunk as the body arrives, so the count never holds the loop."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(limit)
    body = bytearray()
    values = 0
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise TooLarge(limit)
        values += chunk.count(b",") + chunk.count(b"[") + chunk.count(b"{")
    if len(body) > COUNTED_BODY and values > MAX_JSON_VALUES:
        raise Malformed(f"a body over {COUNTED_BODY} bytes may hold {MAX_JSON_VALUES} values")
    return body  # not copied into bytes: json.loads takes a bytearray


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes | bytearray) -> Any:
    """Strict JSON, or Malformed saying why (never a RecursionError) of a body ``read_capped``
    returned."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise Malformed("the JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError among them
        raise Malformed(f"not valid JSON: {exc}") from None


async def read_json(request: web.Request, limit: int = SMALL_BODY) -> Any:
    """A JSON body: NotJson without a JSON media type, TooLarge past ``limit``, Malformed."""
    if not is_json_type(request.content_type):
        raise NotJson("Expected request with `Content-Type: application/json`")
    return parse_json(await read_capped(request, limit))
