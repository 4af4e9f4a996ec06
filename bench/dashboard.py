"""What the web dashboard costs: per refresh, on the node and in the browser.

Two nodes, interleaved: an empty one and one reporting 50 peers and 1,000 routes (the tests'
generated neighbourhood, tests/browser/fake.py). For each, the REST server's time and bytes for
one refresh (the nine GETs the page sends, one after another and all at once), median of
``--rounds``; then, with Chromium installed, the page's own render time per refresh (its
``dashboard-render`` performance measure), its JavaScript heap and the elements in its document
after ``--refreshes`` refreshes, at laptop and phone size.

    python bench/dashboard.py [--rounds 50] [--refreshes 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import aiohttp

# The browser driver, node harness and generated neighbourhood are the browser tests' own.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from browser.cdp import CHROMIUM, launch
from browser.fake import populate
from browser.nodes import ApiNode

PATHS = [
    "/api/v1/admin",
    "/api/v1/pymycelium/node",
    "/api/v1/admin/peers",
    "/api/v1/pymycelium/links",
    "/api/v1/admin/routes/selected",
    "/api/v1/admin/routes/fallback",
    "/api/v1/admin/routes/queried",
    "/api/v1/pymycelium/counters",
    "/api/v1/pymycelium/messages",
]


async def server_round(http: aiohttp.ClientSession, base: str) -> tuple[float, float, int]:
    """(sequential seconds, parallel seconds, bytes) for one refresh's requests."""
    size = 0
    start = time.perf_counter()
    for path in PATHS:
        async with http.get(base + path) as r:
            size += len(await r.read())
    sequential = time.perf_counter() - start

    async def get(path: str) -> None:
        async with http.get(base + path) as r:
            await r.read()

    start = time.perf_counter()
    await asyncio.gather(*(get(path) for path in PATHS))
    return sequential, time.perf_counter() - start, size


async def browser_figures(nodes: dict[str, ApiNode], refreshes: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    async with launch() as browser:
        for name, node in nodes.items():
            for screen, (width, height, mobile) in {
                "laptop": (1280, 900, False),
                "phone": (390, 844, True),
            }.items():
                page = await browser.new_page(width, height)
                await page.viewport(width, height, mobile)
                await page.send("Performance.enable")
                await page.goto(node.url("?refresh=250"))
                renders: list[float] = []
                while len(renders) < refreshes:
                    await asyncio.sleep(0.25)
                    entry = await page.js(
                        "(performance.getEntriesByName('dashboard-render')[0] || {}).duration"
                    )
                    if entry is not None and (not renders or entry != renders[-1]):
                        renders.append(float(entry))
                metrics = await page.send("Performance.getMetrics")
                values = {m["name"]: m["value"] for m in metrics["metrics"]}
                out[f"{name}/{screen}"] = {
                    "render_ms_median": round(statistics.median(renders), 2),
                    "render_ms_max": round(max(renders), 2),
                    "js_heap_mib": round(values["JSHeapUsedSize"] / 2**20, 2),
                    "dom_elements": await page.js("document.getElementsByTagName('*').length"),
                }
                if page.errors:
                    raise SystemExit(f"errors on the page: {page.errors}")
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--refreshes", type=int, default=40)
    args = parser.parse_args()
    nodes = {"empty": ApiNode(), "50 peers, 1000 routes": ApiNode()}
    for node in nodes.values():
        await node.start()
    populate(nodes["50 peers, 1000 routes"].n, peers=50, routes=1000)
    results: dict[str, dict] = {}
    try:
        samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in nodes}
        async with aiohttp.ClientSession() as http:
            for _ in range(args.rounds):  # interleaved, so both see the same machine load
                for name, node in nodes.items():
                    base = f"http://127.0.0.1:{node.api_port}"
                    samples[name].append(await server_round(http, base))
        for name, rows in samples.items():
            results[name] = {
                "refresh_sequential_ms": round(statistics.median(r[0] for r in rows) * 1e3, 2),
                "refresh_parallel_ms": round(statistics.median(r[1] for r in rows) * 1e3, 2),
                "refresh_bytes": rows[-1][2],
            }
        if CHROMIUM is not None:
            results["browser"] = await browser_figures(nodes, args.refreshes)
        else:
            print("no chromium: browser figures skipped")
    finally:
        for node in nodes.values():
            await node.stop()
    print(json.dumps(results, indent=2))
    out = Path(__file__).parent / "results" / "dashboard.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
