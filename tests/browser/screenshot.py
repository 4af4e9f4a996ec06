"""The README's picture: a node with generated neighbours and traffic, photographed in headless
Chromium after the page has watched it for a while.

    cd tests && python -m browser.screenshot ../docs/dashboard.png [--width 1280] [--dark]

Generated, not measured: 9 peers and 40 routes (fake.py), data-plane counters bumped on a
timer, and a route gained, lost or moved every few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from pathlib import Path

from browser.cdp import launch
from browser.fake import populate, random_subnet
from browser.nodes import ApiNode
from mycelium.routing.router import RouteView


async def traffic(api: ApiNode, made: dict, rng: random.Random) -> None:
    """Counters that swing like a working node's, and some route churn."""
    node = api.n
    counters = node.dataplane.counters
    stats = node.dataplane.packet_stats
    me = node.identity.address
    views: list[RouteView] = made["views"]
    links = made["links"]
    next_churn = time.monotonic() + 3
    while True:
        t = time.monotonic()
        wave = 1 + 0.7 * math.sin(t / 6)
        counters.forwarded += int(rng.uniform(30, 50) * wave)
        counters.sent += int(rng.uniform(8, 14) * (2 - wave))
        local = int(rng.uniform(10, 20) * (1 + 0.5 * math.sin(t / 3)))
        counters.routed_local += local
        if rng.random() < 0.15:
            counters.no_route += rng.randrange(1, 6)
        stats.record(b"\x04" + bytes(15), me, local, local * 1100)
        if t >= next_churn:
            next_churn = t + rng.uniform(2, 5)
            kind = rng.random()
            movable = [i for i, v in enumerate(views) if v.selected and v.metric]
            if kind < 0.4:
                hop = rng.choice(links)
                views.append(RouteView(random_subnet(rng), hop, hop.cost + 200, 0, True))
            elif kind < 0.7 and movable:
                del views[rng.choice(movable)]
            elif movable:
                i = rng.choice(movable)
                hop = rng.choice(links)
                views[i] = RouteView(views[i].subnet, hop, hop.cost + 90, views[i].seqno + 1, True)
        await asyncio.sleep(0.1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--phone", action="store_true", help="390 px wide, as a phone")
    parser.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark")
    parser.add_argument("--watch", type=float, default=40.0, help="seconds of history to draw")
    parser.add_argument("--only", help="CSS selector: photograph just this element")
    parser.add_argument("--top", type=int, help="photograph only the page's top TOP pixels")
    args = parser.parse_args()
    rng = random.Random(3)
    api = ApiNode()
    await api.start()
    made = populate(api.n, peers=9, routes=40, seed=11)
    task = asyncio.create_task(traffic(api, made, rng))
    try:
        async with launch() as browser:
            width, height = (390, 844) if args.phone else (args.width, args.height)
            page = await browser.new_page(width, height)
            await page.viewport(width, height, args.phone)
            if args.dark:
                await page.send(
                    "Emulation.setEmulatedMedia",
                    {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
                )
            # 150 samples 250 ms apart: the graphs span 37.5 s.
            await page.goto(api.url("?refresh=250"))
            await asyncio.sleep(args.watch)
            await page.screenshot(args.out, only=args.only, height=args.top)
            if page.errors:
                raise SystemExit(f"errors on the page: {page.errors}")
    finally:
        task.cancel()
        await api.stop()


if __name__ == "__main__":
    asyncio.run(main())
