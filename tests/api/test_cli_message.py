"""``mycelium message send|receive`` against a live node."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from api_pair import Pair
from api_pair import run_cli as run


async def test_send_then_status_and_reply_round_trip(pair: Pair, tmp_path: Path) -> None:
    b = pair.b.messages
    assert b is not None
    sent = await run(pair, "message", "send", pair.b.identity.address_text, "hello", "-t", "chat")
    assert sent.exit_code == 0, sent.output
    message_id = json.loads(sent.output)["id"]
    got = await b.pop(timeout=5)
    assert got is not None and got.data == b"hello" and got.topic == b"chat"
    assert got.id.hex() == message_id

    async def answer() -> None:
        question = await b.pop(timeout=10)
        assert question is not None
        b.reply(question.id, question.src_ip, b"world")

    task = asyncio.create_task(answer())
    waited = await run(
        pair,
        "message",
        "send",
        pair.b.identity.public_key.hex(),
        "ping",
        "--wait",
        "--timeout",
        "10",
    )
    await task
    assert waited.exit_code == 0, waited.output
    reply = json.loads(waited.output)
    assert reply["payload"] == "world" and reply["srcIp"] == pair.b.identity.address_text

    file = tmp_path / "blob.bin"
    file.write_bytes(bytes(range(256)))
    from_file = await run(
        pair, "message", "send", pair.b.identity.address_text, "--msg-path", str(file)
    )
    assert from_file.exit_code == 0
    got = await b.pop(timeout=5)
    assert got is not None and got.data == bytes(range(256))


async def test_receive_json_raw_and_file(pair: Pair, tmp_path: Path) -> None:
    b = pair.b.messages
    assert b is not None
    me = pair.a.identity.address
    await b.push(me, b"text payload", b"news")
    result = await run(pair, "message", "receive", "--timeout", "5", "-t", "news")
    assert result.exit_code == 0, result.output
    message = json.loads(result.output)
    assert message["payload"] == "text payload" and message["topic"] == "news"
    assert message["srcPk"] == pair.b.identity.public_key.hex()

    await b.push(me, b"\xff\xfebinary")
    raw = await run(pair, "message", "receive", "--timeout", "5", "--raw")
    assert raw.stdout_bytes == b"\xff\xfebinary\n"

    await b.push(me, b"to a file")
    target = tmp_path / "out.bin"
    saved = await run(pair, "message", "receive", "--timeout", "5", "--msg-path", str(target))
    assert target.read_bytes() == b"to a file"
    assert "payload" not in json.loads(saved.output)

    empty = await run(pair, "message", "receive", "--timeout", "0")
    assert (empty.exit_code, empty.stdout, empty.stderr) == (124, "", "no message within 0 s\n")


async def test_send_wait_without_reply_times_out_with_its_own_status(pair: Pair) -> None:
    result = await run(
        pair, "message", "send", pair.b.identity.address_text, "anyone?", "--wait", "--timeout", "1"
    )
    assert result.exit_code == 124 and result.stderr == "no reply within 1 s\n"
    assert len(json.loads(result.stdout)["id"]) == 16  # the message's id, as the reference prints


async def test_send_argument_errors(pair: Pair) -> None:
    for args in (
        ["2001:db8::1", "x"],
        ["zz" * 32, "x"],
        ["not-an-ip", "x"],
        [pair.b.identity.address_text],
        [pair.b.identity.address_text, "x", "--wait", "--reply-to", "00" * 8],
    ):
        result = await run(pair, "message", "send", *args)
        assert result.exit_code != 0 and "Traceback" not in result.output, args
