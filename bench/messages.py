"""Message bus throughput and latency between two nodes over loopback TCP (one process, no TUN).

Small messages: N messages of 100 bytes pushed at once; messages/s until the last one is in the
receiver's inbox, and the median / 99th percentile of push-to-inbox latency under that load; then
200 messages one at a time for the latency of a lone message. Large: 1 MiB
messages one after another, MB/s. Median of several runs.

    python bench/messages.py [--runs 3] [--count 5000]
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from mycelium.links.endpoint import Endpoint
from mycelium.node import Node, NodeConfig
from runner import argument_parser, median, report

config = NodeConfig.loopback


async def one_run(count: int, big: int) -> dict[str, float]:
    a = Node(config([]))
    await a.start()
    b = Node(config([Endpoint("tcp", "::1", a.tcp_port)]))
    await b.start()
    try:
        assert a.messages is not None and b.messages is not None
        sender, receiver = b.messages, a.messages
        dst = a.identity.address
        async with asyncio.timeout(10):  # route up
            while b.router.public_key_for(dst) is None:
                await asyncio.sleep(0.01)
        sent_at: dict[bytes, float] = {}
        latencies: list[float] = []
        start = time.perf_counter()
        for _ in range(count):
            message_id, _ = await sender.push(dst, os.urandom(100))
            sent_at[message_id] = time.perf_counter()
        while len(latencies) < count:
            message = await receiver.pop(timeout=30)
            assert message is not None, "message lost"
            latencies.append(time.perf_counter() - sent_at[message.id])
        small_s = time.perf_counter() - start
        latencies.sort()
        one_by_one = []
        for _ in range(200):
            t0 = time.perf_counter()
            await sender.push(dst, os.urandom(100))
            assert await receiver.pop(timeout=30) is not None
            one_by_one.append(time.perf_counter() - t0)
        blob = os.urandom(1 << 20)
        start = time.perf_counter()
        for _ in range(big):
            await sender.push(dst, blob)
            message = await receiver.pop(timeout=60)
            assert message is not None and len(message.data) == len(blob)
        big_s = time.perf_counter() - start
        return {
            "small_msgs_per_s": count / small_s,
            "latency_median_ms": 1000 * median(latencies),
            "latency_p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
            "single_message_latency_median_ms": 1000 * median(one_by_one),
            "large_mb_per_s": big * len(blob) / 1e6 / big_s,
        }
    finally:
        await b.stop()
        await a.stop()


def main() -> None:
    parser = argument_parser(__doc__, "messages")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--large", type=int, default=5, help="1 MiB messages per run")
    args = parser.parse_args()
    runs = [asyncio.run(one_run(args.count, args.large)) for _ in range(args.runs)]
    result = {key: round(median(r[key] for r in runs), 2) for key in runs[0]}
    result["runs"] = [{k: round(v, 2) for k, v in r.items()} for r in runs]  # type: ignore[assignment]
    print(json.dumps(result, indent=2))
    report(result, args.out)


if __name__ == "__main__":
    main()
