"""Local API bounds (docs/api-security.md): what the request guard costs, how long a JSON-RPC
batch holds the event loop, and what the largest requests cost it. One in-process node.

* guard: sequential ``GET /api/v1/admin`` per second through the REST app, with and without its
  guard middleware (the baseline), interleaved; and the guard's own time per request
  (``refusal`` on a same-origin request), as a share of an unguarded request's time.
* batch: 1000 ``getPacketStatistics`` calls (300 addresses each way) through the dispatcher,
  back to back (how batches ran before) and as ``Dispatcher.batch`` runs them (one call per loop
  turn, answers capped at 10 MiB): time, longest event-loop stall seen by a ticker task, bytes.
* report batch: the 200,000-call batch of issue 12 POSTed to the JSON-RPC server: time to the
  refusal and the longest loop stall meanwhile.
* max message: a 64 MiB payload POSTed to ``/api/v1/messages``: time to 201, longest stall;
  the baseline ``one_go`` decodes its base64 in one step instead of 4 MiB slices.

The two POSTs are sent from a client thread, so the stalls are the server's alone.

Medians of several runs. After setup the process's heap is frozen out of the garbage collector
(``gc.freeze()``, ``--no-freeze`` to keep it in): otherwise a full collection of it (about
0.1 s here) lands in whichever loop turn triggers it, batch or not.

    python bench/api_limits.py [--runs 5] [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import statistics
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from mycelium.api import jsonrpc, messages, rest
from mycelium.api.facade import NodeApi
from mycelium.api.guard import refusal
from mycelium.api.jsonrpc import Dispatcher
from mycelium.messages.engine import MAX_MESSAGE_SIZE
from mycelium.node import Node, NodeConfig

SLICE = messages._B64_SLICE


async def stall_during(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """(seconds ``work`` took, longest gap between two turns of a ticker task meanwhile)."""
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = time.perf_counter()
    await work()
    took = time.perf_counter() - start
    done = True
    await task
    return took, max(gaps)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def post(url: str, body: bytes) -> int:
    """A blocking JSON POST (run in a thread): the status."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        r.read()
        return int(r.status)


def unguarded(app: web.Application) -> web.Application:
    """The baseline: the same app without the guard middleware and nosniff header."""
    app.middlewares.pop(0)
    app.on_response_prepare.clear()
    return app


class _Transport:
    """What the guard asks of a connection (a mock's attribute lookups would cost more)."""

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 8989) if name == "sockname" else None


def guard_cost_us(count: int = 20_000) -> float:
    """Microseconds ``refusal`` takes for a same-origin request (Host, Origin, Sec-Fetch-Site)."""
    headers = {
        "Host": "127.0.0.1:8989",
        "Origin": "http://127.0.0.1:8989",
        "Sec-Fetch-Site": "same-origin",
    }
    request = make_mocked_request("GET", "/api/v1/admin", headers=headers, transport=_Transport())
    start = time.perf_counter()
    for _ in range(count):
        assert refusal(request) is None
    return (time.perf_counter() - start) / count * 1e6


async def requests_per_second(http: aiohttp.ClientSession, url: str, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        async with http.get(url) as r:
            assert r.status == 200
            await r.read()
    return count / (time.perf_counter() - start)


async def main_async(runs: int, count: int, freeze: bool) -> dict[str, Any]:
    node = Node(NodeConfig.loopback())
    await node.start()
    api = NodeApi(node)
    guarded_runner, guarded = await serve(rest.build_app(api))
    plain_runner, plain = await serve(unguarded(rest.build_app(api)))
    rpc_runner, rpc = await serve(jsonrpc.build_app(api))
    http = aiohttp.ClientSession()
    figures: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    stats = node.dataplane.packet_stats
    for i in range(300):
        stats.record(b"\x04" + i.to_bytes(15, "big"), b"\x05" + i.to_bytes(15, "big"), 1, 1400)
    dispatcher = Dispatcher(api)
    calls = [{"jsonrpc": "2.0", "id": i, "method": "getPacketStatistics"} for i in range(1000)]
    sizes: dict[str, int] = {}

    async def back_to_back() -> None:
        answers = [await dispatcher.call(call) for call in calls]
        sizes["back_to_back"] = len(json.dumps(answers))

    async def capped() -> None:
        sizes["capped"] = sum(len(a) for a in await dispatcher.batch(calls))

    call = '{"jsonrpc":"2.0","id":%d,"method":"getInfo"}'
    huge = ("[" + ",".join(call % i for i in range(200_000)) + "]").encode()
    payload = base64.b64encode(os.urandom(MAX_MESSAGE_SIZE)).decode()
    dst = "5ff:1:2:3::1"
    message = json.dumps({"dst": {"ip": dst}, "payload": payload}).encode()
    push_url = guarded + "/api/v1/messages"
    if freeze:
        gc.collect()
        gc.freeze()
    try:
        for run in range(runs):
            pair = [("guard_off_rps", plain), ("guard_on_rps", guarded)]
            for name, base in pair if run % 2 else reversed(pair):  # alternate which goes first
                note(name, await requests_per_second(http, base + "/api/v1/admin", count))
            note("guard_us", guard_cost_us())
            took, stall = await stall_during(back_to_back)
            note("batch_back_to_back_ms", took * 1e3)
            note("batch_back_to_back_stall_ms", stall * 1e3)
            took, stall = await stall_during(capped)
            note("batch_ms", took * 1e3)
            note("batch_stall_ms", stall * 1e3)

            took, stall = await stall_during(lambda: asyncio.to_thread(post, rpc, huge))
            note("report_batch_refused_ms", took * 1e3)
            note("report_batch_stall_ms", stall * 1e3)

            slicings = [("max_message_push", SLICE), ("max_message_push_one_go", 1 << 40)]
            for name, size in slicings if run % 2 else reversed(slicings):
                messages._B64_SLICE = size
                took, stall = await stall_during(lambda: asyncio.to_thread(post, push_url, message))
                note(name + "_ms", took * 1e3)
                note(name + "_stall_ms", stall * 1e3)
            messages._B64_SLICE = SLICE
    finally:
        await http.close()
        for runner in (guarded_runner, plain_runner, rpc_runner):
            await runner.cleanup()
        await node.stop()
    medians = {name: round(statistics.median(values), 3) for name, values in figures.items()}
    # The guard's share of one request's time, from its own cost and the unguarded rate.
    medians["guard_cost_pct"] = round(medians["guard_us"] * medians["guard_off_rps"] / 1e4, 2)
    medians["batch_back_to_back_bytes"] = sizes["back_to_back"]
    medians["batch_bytes"] = sizes["capped"]
    medians["report_batch_bytes"] = len(huge)
    medians["max_message_bytes"] = len(message)
    return {"runs": runs, "requests": count, "gc_freeze": freeze, "median": medians, "all": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--no-freeze", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/results/api_limits.json"))
    args = parser.parse_args()
    result = asyncio.run(main_async(args.runs, args.requests, not args.no_freeze))
    for name, value in result["median"].items():
        print(f"{name:32} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
