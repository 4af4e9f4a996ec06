"""The client subcommands against a live node's REST API, in text and JSON."""

from __future__ import annotations

import asyncio
import base64
import json

from click.testing import CliRunner

from api_pair import Pair
from api_pair import run_cli as run
from mycelium.cli.main import cli
from mycelium.cli.table import format_bytes, format_seconds, render
from mycelium.identity import node_subnet


async def test_peers_commands(pair: Pair) -> None:
    text = await run(pair, "peers", "list")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[1].split("|")[1].strip() == "Protocol"
    assert "inbound" in text.output and "alive" in text.output
    as_json = await run(pair, "peers", "list", "--json")
    assert json.loads(as_json.output)[0]["type"] == "inbound"

    added = await run(pair, "peers", "add", "tcp://[2001:db8::7]:9651", "tcp://10.0.0.1:9651")
    assert added.exit_code == 0, added.output
    assert len(pair.a.peer_manager.peers()) == 3
    again = await run(pair, "peers", "add", "tcp://10.0.0.1:9651")
    assert again.exit_code != 0 and "409" in again.output
    removed = await run(pair, "peers", "remove", "tcp://[2001:db8::7]:9651")
    assert removed.exit_code == 0, removed.output
    assert len(pair.a.peer_manager.peers()) == 2
    missing = await run(pair, "peers", "remove", "tcp://[2001:db8::7]:9651")
    assert missing.exit_code != 0 and "404" in missing.output


async def test_routes_and_stats_commands(pair: Pair) -> None:
    subnet = str(node_subnet(pair.b.identity.public_key))
    text = await run(pair, "routes", "selected")
    assert text.exit_code == 0 and subnet in text.output
    assert "Next Hop" in text.output
    routes = json.loads((await run(pair, "routes", "selected", "--json")).output)
    assert [r["metric"] for r in routes if r["subnet"] == subnet] == [0]
    for sub in ("fallback", "queried"):
        result = await run(pair, "routes", sub, "--json")
        assert result.exit_code == 0 and isinstance(json.loads(result.output), list)
        assert (await run(pair, "routes", sub)).exit_code == 0


async def test_stats_packets_prints_a_table_per_direction(pair: Pair) -> None:
    a, b = pair.a.identity.address_text, pair.b.identity.address_text
    status, pushed = await pair.rest(
        "POST", "/messages", json={"dst": {"ip": b}, "payload": base64.b64encode(b"x").decode()}
    )
    assert status == 201 and pair.b.messages is not None
    assert await pair.b.messages.pop(timeout=5) is not None
    async with asyncio.timeout(5):  # the last acknowledgement is back: no more data packets
        while (await pair.rest("GET", f"/messages/status/{pushed['id']}"))[1]["state"] != "read":
            await asyncio.sleep(0.05)
    as_json = await run(pair, "stats", "packets", "--json")
    stats = json.loads(as_json.output)
    text = await run(pair, "stats", "packets")
    assert text.exit_code == as_json.exit_code == 0, text.output

    def table(column: str, entries: list[dict[str, object]]) -> str:
        rows = [[column, "Packets", "Bytes"]]
        rows += [[e["ip"], e["packetCount"], e["byteCount"]] for e in entries]
        return render(rows)

    assert text.output == (
        f"Statistics by Source IP:\n{table('Source IP', stats['bySource'])}\n"
        f"\nStatistics by Destination IP:\n{table('Destination IP', stats['byDestination'])}\n"
    )
    # Node a sent the message to b, and b's acknowledgements came back.
    sources = {e["ip"]: (e["packetCount"], e["byteCount"]) for e in stats["bySource"]}
    destinations = {e["ip"]: (e["packetCount"], e["byteCount"]) for e in stats["byDestination"]}
    assert sources == {a: destinations[b], b: destinations[a]}
    assert sources[a][0] >= 2 and sources[a][1] > 0
    # prettytable's layout: a rule around and between rows, cells padded to the widest.
    width = max(len(a), len(b))
    rule = f"+{'-' * (width + 2)}+{'-' * 9}+{'-' * 7}+"
    assert text.output.splitlines()[:4] == [
        "Statistics by Source IP:",
        rule,
        f"| {'Source IP':<{width}} | Packets | Bytes |",
        rule,
    ]


def test_no_node_running_is_a_one_line_error() -> None:
    result = CliRunner().invoke(cli, ["--api-addr", "127.0.0.1:1", "peers", "list"])
    assert result.exit_code == 1
    assert "is a node running?" in result.output
    assert "Traceback" not in result.output


def test_table_and_units() -> None:
    assert render([["a", "bb"], ["ccc", "d"]]) == (
        "+-----+----+\n| a   | bb |\n+-----+----+\n| ccc | d  |\n+-----+----+"
    )
    assert format_bytes(512) == "512.00 B"
    assert format_bytes(1536) == "1.50 KiB"
    assert format_seconds(59) == "59s"
    assert format_seconds(3725) == "1h 2m 5s"


async def test_proxy_commands(pair: Pair) -> None:
    listed = await run(pair, "proxy", "list")
    assert listed.exit_code == 0 and "IPv6 Address" in listed.output
    assert (await run(pair, "proxy", "list", "--json")).output.strip() == "[]"
    connect = await run(pair, "proxy", "connect")
    assert connect.exit_code != 0
    assert "No valid proxy available or connection failed" in connect.output
    bad = await run(pair, "proxy", "connect", "--remote", "407::1")
    assert bad.exit_code != 0 and "invalid --remote socket address" in bad.output
    given = await run(pair, "proxy", "connect", "--remote", "[407::1]:9999")
    assert (given.exit_code, given.output.strip()) == (0, "[407::1]:9999")
    as_json = await run(pair, "proxy", "connect", "--remote", "[407::1]:9999", "--json")
    assert as_json.output.strip() == '"[407::1]:9999"'
    for args in (("disconnect",), ("probe", "start"), ("probe", "stop")):
        assert (await run(pair, "proxy", *args)).exit_code == 0, args
