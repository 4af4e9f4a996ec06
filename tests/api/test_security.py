"""The attacks of issue 12 against a live node's local API, each refused with nothing changed on
the node, and the bounds on bodies, batches, nesting and timeouts (docs/api-security.md)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api_pair import Pair
from mycelium.api import jsonrpc
from mycelium.api.errors import BadRequest, PushRefused
from mycelium.api.facade import NodeApi
from mycelium.api.guard import MESSAGE_BODY, SMALL_BODY, host_allowed, origin_allowed, split_host
from mycelium.api.jsonrpc import MAX_BATCH, Dispatcher
from mycelium.api.messages import MAX_PAYLOAD_TEXT, MAX_WAIT, _payload, parse_seconds
from mycelium.messages.engine import MAX_MESSAGE_SIZE

JSON = {"Content-Type": "application/json"}
EVIL = "http://evil.example"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def rpc_call(method: str, params: Any = None, ident: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "method": method, "params": params or []}


#: The request of the report: accept a topic from the whole overlay, hand it to a container
#: runtime's socket, and peer with the attacker.
ATTACK_BATCH = [
    rpc_call("addTopic", [b64(b"pwn")], 1),
    rpc_call("addTopicSource", [b64(b"pwn"), "400::/7"], 2),
    rpc_call("setTopicForwardSocket", [b64(b"pwn"), "/run/containerd/containerd.sock"], 3),
    rpc_call("addPeer", ["tcp://[2001:db8::66]:9651"], 4),
    rpc_call("connectProxy", ["127.0.0.1:8990"], 5),
]


def node_state(p: Pair) -> Any:
    """Everything the attacks try to change."""
    assert p.a.messages is not None
    topics = p.a.messages.engine.topics
    return (
        topics.accept_by_default,
        {t: (topics.sources(t), topics.forward_socket(t)) for t in topics.topics()},
        sorted(str(e.endpoint) for e in p.a.peer_manager.peers()),
        p.a.proxy.target,
        p.a.proxy.probing,
        p.a.messages.engine.counters.sent,
        p.a.messages.engine.inbox_size,
    )


async def request(
    p: Pair, server: str, method: str, path: str, **kw: Any
) -> tuple[int, str, dict[str, str]]:
    async with p.http.request(method, p.url(server, path), **kw) as r:
        return r.status, await r.text(), dict(r.headers)


def own_host(p: Pair, server: str) -> str:
    host, port = p.servers.addresses[server]
    return f"{host}:{port}"


async def test_cross_site_simple_posts_change_nothing(pair: Pair) -> None:
    before = node_state(pair)
    batch = json.dumps(ATTACK_BATCH)
    message = json.dumps({"dst": {"ip": pair.b.identity.address_text}, "payload": b64(b"x")})
    # What a browser sends for a cross-site fetch() or form with a text/plain body...
    browser = {"Content-Type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    assert (await request(pair, "JSON-RPC", "POST", "/", data=batch, headers=browser))[0] == 403
    rest = await request(pair, "REST", "POST", "/api/v1/messages", data=message, headers=browser)
    assert rest[0] == 403
    # ... and the same bodies with only the media type wrong (an old browser, or no browser).
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        plain = {"Content-Type": ctype}
        status, text, _ = await request(pair, "JSON-RPC", "POST", "/", data=batch, headers=plain)
        assert status == 415 and "application/json" in text
        path = "/api/v1/messages"
        assert (await request(pair, "REST", "POST", path, data=message, headers=plain))[0] == 415
        body = json.dumps({"endpoint": "tcp://[2001:db8::66]:9651"})
        path = "/api/v1/admin/peers"
        assert (await request(pair, "REST", "POST", path, data=body, headers=plain))[0] == 415
    await asyncio.sleep(0.1)  # anything that had been accepted would be in motion by now
    assert node_state(pair) == before


async def test_a_local_client_still_cannot_relay_the_proxy_to_local_services(pair: Pair) -> None:
    """With the right media type the batch runs, but the proxy target is refused (overlay only)
    and a forward socket must be an absolute path."""
    async with pair.http.post(pair.url("JSON-RPC", "/"), json=ATTACK_BATCH) as r:
        replies = {reply["id"]: reply for reply in await r.json()}
    assert replies[5]["error"]["code"] == -32032 and "overlay" in replies[5]["error"]["data"]
    assert pair.a.proxy.target is None
    relative = rpc_call("setTopicForwardSocket", [b64(b"pwn"), "containerd.sock"])
    async with pair.http.post(pair.url("JSON-RPC", "/"), json=relative) as r:
        assert (await r.json())["error"]["code"] == -32602
    for path in ("relative.sock", "/tmp/nul\0.sock", "/" + "x" * 107):
        forward = "/messages/topics/" + b64(b"pwn") + "/forward"
        status, _ = await pair.rest("PUT", forward, json={"socket_path": path})
        assert status == 400, path


@pytest.mark.parametrize("server, path", [("REST", "/api/v1/admin"), ("metrics", "/metrics")])
async def test_foreign_origins_are_refused(pair: Pair, server: str, path: str) -> None:
    _, port = pair.servers.addresses[server]
    other_port = pair.servers.addresses["JSON-RPC"][1]
    for origin in (EVIL, "null", f"http://127.0.0.1:{other_port}", f"https://127.0.0.1:{port}"):
        status, text, headers = await request(pair, server, "GET", path, headers={"Origin": origin})
        assert status == 403 and "cross-origin" in text, origin
        assert not any(h.lower().startswith("access-control") for h in headers)
    own = {"Origin": f"http://{own_host(pair, server)}", "Sec-Fetch-Site": "same-origin"}
    assert (await request(pair, server, "GET", path, headers=own))[0] == 200


async def test_a_same_origin_page_can_act(pair: Pair) -> None:
    """A dashboard served from the REST root: its POSTs carry our own origin."""
    page = {"Origin": f"http://{own_host(pair, 'REST')}", "Sec-Fetch-Site": "same-origin", **JSON}
    body = json.dumps({"endpoint": "tcp://[2001:db8::77]:9651"})
    status, _, _ = await request(
        pair, "REST", "POST", "/api/v1/admin/peers", data=body, headers=page
    )
    assert status == 204
    typed = {"Sec-Fetch-Site": "none"}  # a URL typed into the address bar
    assert (await request(pair, "REST", "GET", "/api/v1/admin/peers", headers=typed))[0] == 200


async def test_a_cross_site_get_cannot_pop_a_message(pair: Pair) -> None:
    """A cross-site <img> or navigation sends no Origin, but Sec-Fetch-Site says where it came
    from; popping must not happen."""
    assert pair.b.messages is not None and pair.a.messages is not None
    await pair.b.messages.push(pair.a.identity.address, b"secret")
    async with asyncio.timeout(5):
        while not pair.a.messages.engine.inbox_size:
            await asyncio.sleep(0.02)
    for site in ("cross-site", "same-site"):
        headers = {"Sec-Fetch-Site": site}
        assert (await request(pair, "REST", "GET", "/api/v1/messages", headers=headers))[0] == 403
    assert pair.a.messages.engine.inbox_size == 1
    status, _, _ = await request(pair, "REST", "GET", "/api/v1/messages")
    assert status == 200 and pair.a.messages.engine.inbox_size == 0


@pytest.mark.parametrize(
    "server, method, path",
    [("REST", "GET", "/api/v1/admin"), ("JSON-RPC", "POST", "/"), ("metrics", "GET", "/metrics")],
)
async def test_rebound_host_names_are_refused(
    pair: Pair, server: str, method: str, path: str
) -> None:
    _, port = pair.servers.addresses[server]
    kw: dict[str, Any] = {"json": rpc_call("getInfo")} if method == "POST" else {}
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.nip.io:{port}", "[::2]"):
        status, text, _ = await request(pair, server, method, path, headers={"Host": host}, **kw)
        assert status == 403 and "Host" in text, host
    # Loopback names with any port (an SSH tunnel changes it), the address itself, no Host.
    for host in (f"localhost:{port}", "localhost:1234", "LOCALHOST", "[::1]:80", "127.0.0.1"):
        status, _, _ = await request(pair, server, method, path, headers={"Host": host}, **kw)
        assert status == 200, host
    status, _, _ = await request(pair, server, method, path, skip_auto_headers=["Host"], **kw)
    assert status == 200


async def test_a_batch_over_the_cap_runs_nothing(pair: Pair) -> None:
    before = node_state(pair)
    calls = [rpc_call("addTopic", [b64(b"t%d" % i)], i) for i in range(MAX_BATCH + 1)]
    async with pair.http.post(pair.url("JSON-RPC", "/"), json=calls) as r:
        (reply,) = await r.json()
    assert reply["error"]["code"] == -32010 and reply["id"] is None
    assert node_state(pair) == before


async def test_a_batch_yields_the_loop_between_calls(pair: Pair) -> None:
    """A batch of slow calls: the loop still serves others between them (the reference's
    server, like ours before, ran a batch back to back)."""
    dispatcher = Dispatcher(NodeApi(pair.a))
    per_call = 0.004

    def slow(params: Any) -> bool:
        end = time.perf_counter() + per_call
        while time.perf_counter() < end:
            pass
        return True

    dispatcher.methods["getInfo"] = slow
    calls = [rpc_call("getInfo", ident=i) for i in range(250)]
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
            if done.is_set():
                return

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # the ticker is waiting for its turn when the batch starts
    start = time.perf_counter()
    answers = await dispatcher.batch(calls)
    took = time.perf_counter() - start
    done.set()
    await task
    assert len(answers) == 250 and took >= 250 * per_call
    # Back to back, the ticker would wait for the whole batch (>= 1 s); here it waits one call.
    assert max(gaps) < min(0.3, took / 3), (max(gaps), took)


async def test_a_batch_stops_running_calls_past_the_response_cap(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonrpc, "MAX_BATCH_RESPONSE", 200)
    assert pair.a.messages is not None
    topics = pair.a.messages.engine.topics
    calls = [rpc_call("addTopic", [b64(b"cap%d" % i)], i) for i in range(20)]
    async with pair.http.post(pair.url("JSON-RPC", "/"), json=calls) as r:
        replies = await r.json()
    ran = [reply["id"] for reply in replies if reply.get("result") is True]
    refused = [reply for reply in replies if "error" in reply]
    assert 0 < len(ran) < 20 and len(ran) + len(refused) == 20
    assert {reply["error"]["code"] for reply in refused} == {-32011}
    # Exactly the answered calls ran: nothing was done and then dropped from the answer.
    assert sorted(topics.topics()) == sorted(b"cap%d" % i for i in ran)


@pytest.mark.parametrize(
    "bad", ["nan", "NaN", "inf", "-1", "1e400", "1e3", "18446744073709551616", "1_0", " 5", ""]
)
async def test_absurd_rest_timeouts_are_refused_before_anything_happens(
    pair: Pair, bad: str
) -> None:
    before = node_state(pair)
    message = {"dst": {"ip": pair.b.identity.address_text}, "payload": b64(b"x")}
    status, text = await pair.rest("POST", "/messages", params={"reply_timeout": bad}, json=message)
    assert status == 400 and "reply_timeout" in text
    status, text = await pair.rest("GET", "/messages", params={"timeout": bad})
    assert status == 400 and "timeout" in text
    assert pair.a.messages is not None and pair.a.messages._reply_waiters == {}
    assert node_state(pair) == before


async def test_absurd_rpc_timeouts_are_invalid_params(pair: Pair) -> None:
    before = node_state(pair)
    message = {"dst": {"ip": pair.b.identity.address_text}, "payload": b64(b"x")}
    for bad in ("nan", -1, 2**64, True, "soon", [1]):
        pushed = await pair.rpc("pushMessage", [message, bad])
        assert pushed["error"]["code"] == -32602, bad
        popped = await pair.rpc("popMessage", [False, bad])
        assert popped["error"]["code"] == -32602, bad
    # NaN and Infinity are no JSON, and 1e999 is an infinity: parse error or invalid params.
    url = pair.url("JSON-RPC", "/")
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = json.dumps(rpc_call("pushMessage", [message])).replace("]}", f", {literal}]}}")
        async with pair.http.post(url, data=raw, headers=JSON) as r:
            assert r.status == 200
            assert (await r.json())["error"]["code"] in (-32700, -32602), literal
    assert pair.a.messages is not None and pair.a.messages._reply_waiters == {}
    assert node_state(pair) == before


def test_timeouts_are_bounded() -> None:
    assert parse_seconds("0", "t") == 0.0
    assert parse_seconds("2.5", "t") == 2.5
    assert parse_seconds(31_536_000, "t") == MAX_WAIT  # the reference CLI's "forever"
    assert parse_seconds(str(2**64 - 1), "t") == MAX_WAIT
    for bad in (float("nan"), float("inf"), -0.5, 2**64, 10**400, False, None, "1e3", "0x10"):
        with pytest.raises(BadRequest):
            parse_seconds(bad, "t")


@given(st.one_of(st.text(max_size=30), st.floats(), st.integers()))
def test_any_timeout_is_refused_or_finite_and_bounded(value: object) -> None:
    try:
        seconds = parse_seconds(value, "t")
    except BadRequest:
        return
    assert 0 <= seconds <= MAX_WAIT


@pytest.mark.parametrize("depth", [2_000, 200_000])
async def test_deep_json_is_a_parse_error(pair: Pair, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    # (A body this deep is past the 64 KiB cap of the small endpoints: 413 there.)
    small = 400 if len(deep) <= SMALL_BODY else 413
    for path, status in (("/messages", 400), ("/admin/peers", small), ("/messages/topics", small)):
        got, text = await pair.rest("POST", path, data=deep, headers=JSON)
        assert got == status and (status == 413 or "nested" in text), path
    async with pair.http.post(pair.url("JSON-RPC", "/"), data=deep, headers=JSON) as r:
        assert r.status == 200
        error = (await r.json())["error"]
    assert error["code"] == -32700 and "nested" in error["data"]
    deep_object = '{"a":' * depth + "1" + "}" * depth
    async with pair.http.post(pair.url("JSON-RPC", "/"), data=deep_object, headers=JSON) as r:
        assert (await r.json())["error"]["code"] == -32700


async def test_a_large_body_of_tiny_values_is_refused(pair: Pair) -> None:
    """Two MiB of ``0,`` would be a million Python objects; only bodies that big are counted."""
    message = {"dst": {"ip": pair.b.identity.address_text}, "payload": ""}
    raw = json.dumps(message)[:-1] + ', "pad": [' + "0," * 1_000_000 + "0]}"
    status, text = await pair.rest("POST", "/messages", data=raw, headers=JSON)
    assert status == 400 and "values" in text
    async with pair.http.post(pair.url("JSON-RPC", "/"), data=raw, headers=JSON) as r:
        assert (await r.json())["error"]["code"] == -32700


async def raw_request(p: Pair, server: str, head: str) -> bytes:
    host, port = p.servers.addresses[server]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "server, path, limit",
    [
        ("REST", "/api/v1/admin/peers", SMALL_BODY),
        ("REST", "/api/v1/messages/topics", SMALL_BODY),
        ("REST", "/api/v1/messages", MESSAGE_BODY),
        ("JSON-RPC", "/", MESSAGE_BODY),
    ],
)
async def test_bodies_over_their_cap_are_refused_unread(
    pair: Pair, server: str, path: str, limit: int
) -> None:
    """An announced length past the endpoint's cap: 413 at once, before the body is sent."""
    head = (
        f"POST {path} HTTP/1.1\nHost: {own_host(pair, server)}\n"
        f"Content-Type: application/json\nContent-Length: {limit + 1}\n"
    )
    assert (await raw_request(pair, server, head)).startswith(b"HTTP/1.1 413")


async def test_a_chunked_body_over_the_cap_is_refused(pair: Pair) -> None:
    async def chunks() -> Any:
        for _ in range(5):
            yield b" " * 16_384
        yield b"{}"

    status, _ = await pair.rest("POST", "/admin/peers", data=chunks(), headers=JSON)
    assert status == 413


async def test_a_message_near_the_cap_is_accepted(pair: Pair) -> None:
    """A body far over the small cap but within the message cap goes through."""
    payload = b64(b"m" * 300_000)
    message = {"dst": {"ip": pair.b.identity.address_text}, "payload": payload}
    assert (await pair.rest("POST", "/messages", json=message))[0] == 201
    assert (await pair.rpc("pushMessage", [message]))["result"]["id"]


@pytest.mark.parametrize(
    "host, local, allowed",
    [
        ("localhost:8989", "127.0.0.1", True),
        ("[::1]:8989", "::1", True),
        ("127.0.0.1", "127.0.0.1", True),
        ("192.168.1.5:8989", "192.168.1.5", True),  # bound to 0.0.0.0, reached on the LAN
        ("192.168.1.5:8989", "::ffff:192.168.1.5", True),
        ("192.168.1.6:8989", "192.168.1.5", False),
        ("evil.example:8989", "127.0.0.1", False),
        ("localhost.evil.example", "127.0.0.1", False),
        ("::1", "::1", False),  # an IPv6 Host without brackets is malformed
        ("localhost:99999", "127.0.0.1", False),
        ("", "127.0.0.1", False),
        (None, "127.0.0.1", True),
    ],
)
def test_host_rule(host: str | None, local: str, allowed: bool) -> None:
    assert host_allowed(host, local) is allowed


def test_origin_rule() -> None:
    assert origin_allowed("http://127.0.0.1:8989", "127.0.0.1:8989")
    assert origin_allowed("http://LOCALHOST", "localhost:80")
    assert not origin_allowed("http://localhost:8990", "localhost:8989")
    assert not origin_allowed("http://127.0.0.1:8989", "localhost:8989")
    assert not origin_allowed("https://127.0.0.1:8989", "127.0.0.1:8989")
    assert not origin_allowed("null", "127.0.0.1:8989")
    assert not origin_allowed("http://127.0.0.1:8989/x", "127.0.0.1:8989")
    assert not origin_allowed("http://127.0.0.1:8989", None)


@given(st.text(max_size=40))
def test_host_parsing_never_raises(text: str) -> None:
    split_host(text)
    host_allowed(text, "127.0.0.1")
    origin_allowed(text, text)


async def test_a_large_payload_is_decoded_in_slices_and_arrives_whole(pair: Pair) -> None:
    blob = os.urandom(5 * 1024 * 1024 + 1)  # over one 4 MiB slice of base64 text
    message = {"dst": {"ip": pair.b.identity.address_text}, "payload": b64(blob)}
    status, body = await pair.rest("POST", "/messages", json=message)
    assert status == 201
    assert (await pair.rest("GET", f"/messages/status/{body['id']}"))[1]["msgLen"] == len(blob)
    assert pair.a.messages is not None  # (delivering 5 MiB would take the engine 20 s)
    assert pair.a.messages.engine._outbox[bytes.fromhex(body["id"])].data == blob
    text = b64(blob)
    broken = {**message, "payload": text[:8] + "==" + text[10:]}  # padding inside the text
    assert (await pair.rest("POST", "/messages", json=broken))[0] == 400


async def test_payloads_past_the_message_size_are_refused() -> None:
    with pytest.raises(PushRefused):
        await _payload("A" * (MAX_PAYLOAD_TEXT + 4))  # refused by its length alone
    with pytest.raises(PushRefused):
        await _payload("A" * MAX_PAYLOAD_TEXT)  # 64 MiB + 2 bytes once decoded
    assert len(await _payload("A" * (MAX_PAYLOAD_TEXT - 4) + "AA==")) == MAX_MESSAGE_SIZE
