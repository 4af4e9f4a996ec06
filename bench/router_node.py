"""One node's share of a large network: the cost of learning every route of an N-node network.

The whole-network simulator (routing_scale.py) pays for all N routers; a real node pays only for
its own. Here one router with ``--degree`` neighbours receives, through the stream decoder in
64 KiB reads, the Updates its neighbours send when it joins an N-node network (every origin's /64
from every neighbour, different metrics, interleaved by neighbour), and encodes everything it
sends back (its own triggered updates to the other neighbours). Reported: wall time, Updates per
second, router state per route (deep size, as routing_scale.py counts it), peak RSS. Median of
``--runs`` runs per size.

    python bench/router_node.py --sizes 10000 100000
"""

from __future__ import annotations

import gc
import json
import random
import resource
import time
from typing import Any

from mycelium.identity import RouterId, node_subnet
from mycelium.routing import Router
from mycelium.routing.limits import RouterLimits
from mycelium.wire.packet import encode_control
from mycelium.wire.stream import StreamDecoder
from mycelium.wire.tlv import Update
from routing_scale import router_state_bytes
from runner import argument_parser, median, report

CHUNK = 65536


def streams(n: int, degree: int, rng: random.Random) -> list[bytes]:
    """Per neighbour, the byte stream of its Updates for ``n`` origins."""
    frames: list[list[bytes]] = [[] for _ in range(degree)]
    for _ in range(n):
        key = rng.randbytes(32)
        rid = RouterId(key + b"\x00\x00" + rng.randbytes(6))
        subnet = node_subnet(key)
        for j in range(degree):
            metric = rng.randrange(20, 4000)
            frames[j].append(encode_control(Update(subnet, 0, metric, rid)))
    return [b"".join(f) for f in frames]


def run(n: int, degree: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    data = streams(n, degree, rng)
    # A node in a network this big runs with --max-routes/--max-routes-per-peer raised to fit.
    fits = max(n, RouterLimits().max_routes)
    limits = RouterLimits(max_routes=fits, max_routes_per_neighbour=fits)
    router = Router(RouterId(rng.randbytes(40)), 0.0, limits)
    decoders = [StreamDecoder() for _ in range(degree)]
    for j in range(degree):
        router.add_neighbour(j, 10, 0.0)
    router.take_outgoing()
    gc.collect()
    gc.disable()
    sent = 0
    start = time.perf_counter()
    now = 1.0
    for offset in range(0, max(len(d) for d in data), CHUNK):
        for j in range(degree):
            for tlv in decoders[j].feed(data[j][offset : offset + CHUNK]):
                router.handle_tlv(j, tlv, now)  # type: ignore[arg-type]
            router.take_route_changes()  # the data plane's share, drained as a node does
            # What a node sends back goes through the encoder too (once per TLV object).
            encoded: dict[int, bytes] = {}
            for _, tlv in router.take_outgoing():
                if id(tlv) not in encoded:
                    encoded[id(tlv)] = encode_control(tlv)
                sent += 1
        now += 0.001
    wall = time.perf_counter() - start
    gc.enable()
    routes = len(router.table)
    assert routes == n, f"{routes} routes learnt of {n}"
    return {
        "routes": n,
        "neighbours": degree,
        "updates_received": n * degree,
        "updates_sent": sent,
        "wall_s": round(wall, 3),
        "updates_per_s": round(n * degree / wall),
        "state_bytes_per_route": round(router_state_bytes(router) / n, 1),
        "route_entries": router.table.entry_count(),
    }


def main() -> None:
    parser = argument_parser(__doc__, "router_node")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--degree", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    results = []
    for n in args.sizes:
        runs = [run(n, args.degree, args.seed + i) for i in range(args.runs)]
        result = dict(runs[len(runs) // 2])
        result["wall_s"] = median(r["wall_s"] for r in runs)
        result["wall_s_runs"] = [r["wall_s"] for r in runs]
        result["updates_per_s"] = round(n * args.degree / result["wall_s"])
        print(json.dumps(result), flush=True)
        results.append(result)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": round(peak, 1)}))
    report({"results": results, "peak_rss_mb": round(peak, 1)}, args.out)


if __name__ == "__main__":
    main()
