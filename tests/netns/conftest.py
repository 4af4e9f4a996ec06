"""Fixtures for real-network tests: root only; every namespace is removed after each test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns.harness import Network

NEEDS = [
    (os.geteuid() != 0, "needs root (network namespaces)"),
    (shutil.which("ip") is None, "needs iproute2"),
    (not os.path.exists("/dev/net/tun"), "needs /dev/net/tun"),
]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    for missing, reason in NEEDS:
        if missing:
            pytest.skip(reason)
    network = Network(prefix=f"mn{os.getpid() % 10000}-", workdir=tmp_path)
    try:
        yield network
    finally:
        network.close()
