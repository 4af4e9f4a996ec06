"""The benchmarks that need namespaces still run against today's code, at a tiny size (their
figures are bench/'s business): the relay line, and the pair under cProfile, whose profiles once
stopped being written without anyone noticing (the node had started replacing its process)."""

from __future__ import annotations

import json
import pstats
import shutil
from pathlib import Path

import pytest

from bench_runs import run_bench
from netns.harness import Network


def bench(name: str, *args: str, cwd: Path) -> dict:
    out = cwd / f"{name}.json"
    run_bench(name, [*args, "--out", str(out)], cwd)
    return json.loads(out.read_text())


@pytest.fixture
def lab(net: Network, tmp_path: Path) -> Path:
    """Root and the tools (the ``net`` fixture checks the first); the benchmarks make their own
    namespaces."""
    if shutil.which("iperf3") is None:
        pytest.skip("needs iperf3")
    return tmp_path


def test_relay_line_carries_a_transfer_through_our_relay(
    lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MYCELIUM_REFERENCE_BIN", raising=False)
    figures = bench("relay", "--rounds", "1", "--seconds", "1", cwd=lab)
    (run,) = figures["runs"]["ours"]
    assert run["gbit_s"] > 0 and run["relay_cpu_s_per_gb"] > 0


def test_throughput_profile_writes_both_nodes_profiles(lab: Path) -> None:
    profiles = lab / "profiles"
    figures = bench(
        "throughput", "--runs", "1", "--seconds", "1", "--profile", str(profiles), cwd=lab
    )
    assert figures["overlay_median_gbit_s"] > 0
    for node in ("a", "b"):
        stats = pstats.Stats(str(profiles / f"{node}.prof")).stats  # type: ignore[attr-defined]
        functions = " ".join(name for _, _, name in stats)
        # Both nodes carried data both ways under the profiler. The names are the links' (plain
        # Python): in a compiled build the node calls the data plane natively, out of the
        # profiler's sight (docs/architecture.md §6).
        assert "data_received" in functions and "send_data_batch" in functions
