"""``mycelium message send|receive``: the message bus from the command line, through the node's
REST API, with the reference's output (compact JSON; payloads and topics as text when they are
UTF-8, base64 otherwise)."""

from __future__ import annotations

import base64
import ipaddress
import json
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import click

from ..subnet import GLOBAL_SUBNET
from .client import client_for

#: "Wait forever" as the reference spells it: one year.
FOREVER = 60 * 60 * 24 * 365
#: Exit status when the wait for a message or a reply ran out (as timeout(1) exits).
TIMED_OUT = 124


def _timed_out(what: str, seconds: int) -> None:
    click.echo(f"no {what} within {seconds} s", err=True)
    sys.exit(TIMED_OUT)


def _readable(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode()


def _cli_message(received: dict[str, Any], with_payload: bool = True) -> dict[str, Any]:
    out = {k: received[k] for k in ("id", "srcIp", "srcPk", "dstIp", "dstPk")}
    if received.get("topic") is not None:
        out["topic"] = _readable(base64.b64decode(received["topic"]))
    if with_payload:
        out["payload"] = _readable(base64.b64decode(received["payload"]))
    return out


def _destination(text: str) -> dict[str, str]:
    if len(text) == 64:
        try:
            bytes.fromhex(text)
        except ValueError:
            raise click.ClickException(f"{text} is not a valid hex encoded public key") from None
        return {"pk": text}
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise click.ClickException(f"{text} is not a valid IPv6 address") from None
    if not GLOBAL_SUBNET.contains(address.packed):
        raise click.ClickException(f"{text} is not a part of {GLOBAL_SUBNET}")
    return {"ip": str(address)}


def _echo_compact(value: Any) -> None:
    click.echo(json.dumps(value, separators=(",", ":")))


@click.group("message")
def message_group() -> None:
    """Actions on the message subsystem."""


@message_group.command("send")
@click.option("-w", "--wait", is_flag=True, help="Wait for a reply from the receiver.")
@click.option(
    "--timeout",
    type=click.IntRange(min=0),
    default=None,
    help="Seconds to wait for a reply (with --wait).",
)
@click.option("-t", "--topic", default=None, help="The message topic.")
@click.option(
    "--msg-path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Send the contents of this file instead of MESSAGE.",
)
@click.option("--reply-to", default=None, help="Send this message as a reply to message ID.")
@click.argument("destination")
@click.argument("message", required=False)
@click.pass_context
def send(
    ctx: click.Context,
    wait: bool,
    timeout: int | None,
    topic: str | None,
    msg_path: Path | None,
    reply_to: str | None,
    destination: str,
    message: str | None,
) -> None:
    """Send MESSAGE to DESTINATION (an overlay IPv6 address or a hex public key); with --wait,
    print the reply (exit status 124 when none came in time)."""
    if reply_to is not None and wait:
        raise click.ClickException("Only one of --reply-to or --wait is allowed")
    dst = _destination(destination)
    if msg_path is not None:
        try:
            payload = msg_path.read_bytes()
        except OSError as exc:
            raise click.ClickException(
                f"Could not read file at {msg_path}: {exc.strerror}"
            ) from None
    elif message is not None:
        payload = message.encode()
    else:
        raise click.ClickException("Message is a required argument if `--msg-path` is not provided")
    path = "/messages" if reply_to is None else f"/messages/reply/{reply_to}"
    wait_for = None
    if wait:
        wait_for = FOREVER if timeout is None else timeout
        path += f"?reply_timeout={wait_for}"
    body: dict[str, Any] = {"dst": dst, "payload": base64.b64encode(payload).decode()}
    if topic is not None:
        body["topic"] = base64.b64encode(topic.encode()).decode()
    status, raw = client_for(ctx).call(
        "POST", path, body, timeout=None if wait_for is not None else 30
    )
    if status == 204:
        return
    if status not in (200, 201, 408):
        raise click.ClickException(f"the node refused the message: HTTP {status} {raw.decode()}")
    response = json.loads(raw)
    _echo_compact(_cli_message(response) if "payload" in response else response)
    if status == 408:
        assert wait_for is not None
        _timed_out("reply", wait_for)


@message_group.command("receive")
@click.option(
    "--timeout",
    type=click.IntRange(min=0),
    default=None,
    help="Seconds to wait for a message (default: wait forever).",
)
@click.option("-t", "--topic", default=None, help="Only receive messages with this topic.")
@click.option(
    "--msg-path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the payload to this file.",
)
@click.option("--raw", is_flag=True, help="Print only the payload, as it is.")
@click.pass_context
def receive(
    ctx: click.Context, timeout: int | None, topic: str | None, msg_path: Path | None, raw: bool
) -> None:
    """Wait for one message and print it (exit status 124 when none came in time)."""
    wait = FOREVER if timeout is None else timeout
    path = f"/messages?timeout={wait}"
    if topic is not None:
        if len(topic.encode()) > 255:
            raise click.ClickException(f"{topic} is longer than the maximum topic length of 255")
        path += "&topic=" + urllib.parse.quote(base64.b64encode(topic.encode()).decode(), safe="")
    status, body = client_for(ctx).call("GET", path, timeout=None)
    if status == 204:
        _timed_out("message", wait)
    if status != 200:
        raise click.ClickException(f"receiving failed: HTTP {status} {body.decode()}")
    received = json.loads(body)
    payload = base64.b64decode(received["payload"])
    if msg_path is not None:
        try:
            msg_path.write_bytes(payload)
        except OSError as exc:
            raise click.ClickException(f"Failed to write payload to file: {exc.strerror}") from None
    if raw:
        if msg_path is None:
            sys.stdout.buffer.write(payload + b"\n")
            sys.stdout.flush()
        return
    _echo_compact(_cli_message(received, with_payload=msg_path is None))
