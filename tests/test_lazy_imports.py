"""A node loads only what its configuration uses: without a QUIC peer the QUIC stack (qh3, about
13 MB resident) stays unloaded, even though the QUIC socket listens and NAT traversal publishes the
certificate's fingerprint."""

from __future__ import annotations

import subprocess
import sys

AT_REST = """
import asyncio, sys
from mycelium.node import Node, NodeConfig

async def main():
    async with Node(NodeConfig.loopback()) as node:
        assert node.quic_port and node.nat is not None
        async with asyncio.timeout(10):
            while node.nat.negotiator.local is None:  # candidates and fingerprint published
                await asyncio.sleep(0.05)
        print(sorted({m.split(".")[0] for m in sys.modules} & {"qh3", "aiohttp", "tlslite"}))

asyncio.run(main())
"""


def test_a_node_without_quic_peers_does_not_load_the_quic_stack() -> None:
    out = subprocess.run(
        [sys.executable, "-c", AT_REST], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]"], out.stdout
