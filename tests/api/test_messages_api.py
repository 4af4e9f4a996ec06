"""The message bus through the REST and JSON-RPC APIs of a live node, and topic sockets."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from api_pair import Pair
from mycelium.identity import node_subnet


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_push_is_delivered_and_read(pair: Pair) -> None:
    dst = pair.b.identity.address_text
    status, body = await pair.rest(
        "POST", "/messages", json={"dst": {"ip": dst}, "topic": b64(b"t"), "payload": b64(b"hi")}
    )
    assert status == 201 and len(body["id"]) == 16
    assert pair.b.messages is not None
    got = await pair.b.messages.pop(timeout=5)
    assert got is not None and got.data == b"hi" and got.topic == b"t"
    assert got.src_pk == pair.a.identity.public_key
    async with asyncio.timeout(5):
        while True:
            status, info = await pair.rest("GET", f"/messages/status/{body['id']}")
            if info["state"] == "read":
                break
            await asyncio.sleep(0.05)
    assert info["dst"] == dst and info["msgLen"] == 2
    assert (await pair.rest("GET", "/messages/status/00112233aabbccdd"))[0] == 404
    assert (await pair.rest("GET", "/messages/status/zz"))[0] == 400


async def test_push_by_public_key_and_wait_for_the_reply(pair: Pair) -> None:
    b = pair.b.messages
    assert b is not None

    async def answer() -> None:
        question = await b.pop(timeout=5)
        assert question is not None
        b.reply(question.id, question.src_ip, b"pong")

    task = asyncio.create_task(answer())
    status, body = await pair.rest(
        "POST",
        "/messages?reply_timeout=5",
        json={"dst": {"pk": pair.b.identity.public_key.hex()}, "payload": b64(b"ping")},
    )
    await task
    assert status == 200
    assert base64.b64decode(body["payload"]) == b"pong"
    assert body["srcIp"] == pair.b.identity.address_text and "topic" not in body
    status, body = await pair.rest(
        "POST",
        "/messages?reply_timeout=0",
        json={"dst": {"ip": pair.b.identity.address_text}, "payload": b64(b"unanswered")},
    )
    assert status == 408 and len(body["id"]) == 16


async def test_pop_peek_topic_and_timeout(pair: Pair) -> None:
    b = pair.b.messages
    assert b is not None
    await b.push(pair.a.identity.address, b"first", b"x")
    await b.push(pair.a.identity.address, b"second", b"y")
    status, body = await pair.rest("GET", f"/messages?timeout=5&topic={b64(b'y')}&peek=true")
    assert status == 200 and base64.b64decode(body["payload"]) == b"second"
    status, body = await pair.rest("GET", f"/messages?timeout=5&topic={b64(b'y')}")
    assert status == 200 and base64.b64decode(body["payload"]) == b"second"
    status, body = await pair.rest("GET", "/messages?timeout=5")
    assert status == 200 and base64.b64decode(body["payload"]) == b"first"
    assert base64.b64decode(body["topic"]) == b"x"
    assert (await pair.rest("GET", "/messages"))[0] == 204
    assert (await pair.rest("GET", "/messages?peek=maybe"))[0] == 400


async def test_bad_push_bodies(pair: Pair) -> None:
    for bad in (
        {},
        {"dst": {"ip": "nope"}, "payload": ""},
        {"dst": {"pk": "00"}, "payload": ""},
        {"dst": {"ip": "5ff::1"}, "payload": "***"},
        {"dst": {"ip": "5ff::1"}, "topic": b64(b"t" * 256), "payload": ""},
        {"dst": {"pk": {"nested": [1]}}, "payload": ""},
        {"dst": {"pk": 5}, "payload": ""},
        {"dst": {"ip": ["5ff::1"]}, "payload": ""},
        {"dst": {"ip": "5ff::1"}, "topic": 7, "payload": ""},
    ):
        assert (await pair.rest("POST", "/messages", json=bad))[0] == 400, bad
        reply = "/messages/reply/abcdef0123456789"
        assert (await pair.rest("POST", reply, json=bad))[0] in (400, 422), bad
    as_json = {"Content-Type": "application/json"}
    assert (await pair.rest("POST", "/messages", data=b"{", headers=as_json))[0] == 400
    assert (await pair.rest("POST", "/messages", data=b"{"))[0] == 415


async def test_topic_configuration_endpoints(pair: Pair) -> None:
    t = b64(b"chat")
    assert await pair.rest("GET", "/messages/topics/default") == (200, {"accept": True})
    assert (await pair.rest("PUT", "/messages/topics/default", json={"accept": False}))[0] == 204
    assert await pair.rest("GET", "/messages/topics/default") == (200, {"accept": False})
    assert (await pair.rest("POST", "/messages/topics", json=t))[0] == 201
    assert (await pair.rest("POST", "/messages/topics", json=list(b"raw")))[0] == 201
    status, listed = await pair.rest("GET", "/messages/topics")
    assert status == 200
    assert sorted(listed) == sorted([t, b64(b"raw")])
    subnet = str(node_subnet(pair.b.identity.public_key))
    path = "/messages/topics/" + t.replace("/", "%2F")
    assert (await pair.rest("POST", path + "/sources", json={"subnet": subnet}))[0] == 204
    assert await pair.rest("GET", path + "/sources") == (200, [subnet])
    assert (await pair.rest("POST", path + "/sources", json={"subnet": "bad"}))[0] == 400
    assert (await pair.rest("PUT", path + "/forward", json={"socket_path": "/tmp/s"}))[0] == 204
    assert await pair.rest("GET", path + "/forward") == (200, "/tmp/s")
    assert (await pair.rest("DELETE", path + "/forward"))[0] == 204
    assert await pair.rest("GET", path + "/forward") == (200, None)
    quoted = subnet.replace("/", "%2F")
    assert (await pair.rest("DELETE", f"{path}/sources/{quoted}"))[0] == 204
    assert await pair.rest("GET", path + "/sources") == (200, [])
    assert (await pair.rest("DELETE", path))[0] == 204
    assert (await pair.rest("GET", path + "/sources"))[0] == 404
    assert (await pair.rest("GET", "/messages/topics/!!!/sources"))[0] == 400

    # With the default set to reject, an unconfigured topic from b never arrives.
    b = pair.b.messages
    assert b is not None
    await b.push(pair.a.identity.address, b"dropped", b"other")
    assert (await pair.rest("GET", "/messages?timeout=1"))[0] == 204


async def test_jsonrpc_message_methods(pair: Pair) -> None:
    message = {"dst": {"ip": pair.b.identity.address_text}, "payload": b64(b"rpc")}
    pushed = await pair.rpc("pushMessage", [message])
    message_id = pushed["result"]["id"]
    assert pair.b.messages is not None
    assert (await pair.b.messages.pop(timeout=5)).data == b"rpc"  # type: ignore[union-attr]
    info = await pair.rpc("getMessageInfo", [message_id])
    assert info["result"]["msgLen"] == 3
    assert (await pair.rpc("getMessageInfo", ["00" * 8]))["error"]["code"] == -32019
    assert (await pair.rpc("getMessageInfo", ["x"]))["error"]["code"] == -32020
    assert (await pair.rpc("popMessage", [False, 0]))["result"] is None
    await pair.b.messages.push(pair.a.identity.address, b"back")
    popped = await pair.rpc("popMessage", {"peek": False, "timeout": 5})
    assert base64.b64decode(popped["result"]["payload"]) == b"back"
    # No reply in time: the reference answers with the id, not an error.
    timeout = await pair.rpc("pushMessage", [message, 0])
    assert len(timeout["result"]["id"]) == 16 and set(timeout["result"]) == {"id"}
    assert (await pair.rpc("addTopic", [b64(b"q")]))["result"] is True
    assert (await pair.rpc("getTopics"))["result"] == [b64(b"q")]
    assert (await pair.rpc("addTopicSource", [b64(b"q"), "400::/7"]))["result"] is True
    assert (await pair.rpc("getTopicSources", [b64(b"q")]))["result"] == ["400::/7"]
    assert (await pair.rpc("setTopicForwardSocket", [b64(b"q"), "/tmp/x"]))["result"] is True
    assert (await pair.rpc("getTopicForwardSocket", [b64(b"q")]))["result"] == "/tmp/x"
    # The reference's codes: a bad topic is -32013 when popping, -32021 in topic configuration.
    assert (await pair.rpc("popMessage", [False, 0, "%%%"]))["error"]["code"] == -32013
    assert (await pair.rpc("removeTopic", ["%%%"]))["error"]["code"] == -32021
    assert (await pair.rpc("addTopicSource", [b64(b"q"), "nope"]))["error"]["code"] == -32023
    assert (await pair.rpc("getTopicSources", [b64(b"unknown")]))["error"]["code"] == -32030
    assert (await pair.rpc("setDefaultTopicAction", [False]))["result"] is True
    assert (await pair.rpc("getDefaultTopicAction"))["result"] is False


async def test_topic_forwarded_to_a_unix_socket_and_answered(pair: Pair, tmp_path: Path) -> None:
    path = str(tmp_path / "topic.sock")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        writer.write(b"answer to " + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(serve, path)
    try:
        assert pair.a.messages is not None and pair.b.messages is not None
        topics = pair.a.messages.engine.topics
        topics.add_source(b"svc", node_subnet(pair.b.identity.public_key))
        topics.set_forward_socket(b"svc", path)
        _, reply = await pair.b.messages.push(
            pair.a.identity.address, b"q", b"svc", reply_timeout=5
        )
        assert reply is not None and reply.data == b"answer to q" and reply.is_reply
        # A socket nobody listens on: the message lands in the inbox instead.
        topics.set_forward_socket(b"svc", str(tmp_path / "missing.sock"))
        await pair.b.messages.push(pair.a.identity.address, b"kept", b"svc")
        got = await pair.a.messages.pop(timeout=5)
        assert got is not None and got.data == b"kept"
    finally:
        server.close()
