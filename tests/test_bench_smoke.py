"""Every in-process benchmark still runs against today's code, at a tiny size (the figures are
bench/'s business, not a test's): a refactor that breaks one fails here, not months later when
someone wants a figure. The benchmarks that need root and namespaces run in their own labs'
tests (tests/netns/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_runs import run_bench

SMALL = {
    "codec": ["--runs", "1", "--frames", "500"],
    "dataplane": ["--runs", "1", "--packets", "2000"],
    "allow_list": ["--runs", "1", "--packets", "2000"],
    "replay": ["--runs", "1", "--packets", "2000"],
    "messages": ["--runs", "1", "--count", "20", "--large", "1"],
    "router_node": ["--runs", "1", "--sizes", "200"],
    "routing_scale": ["--runs", "1", "--sizes", "20"],
    "link_throughput": ["--runs", "1", "--megabytes", "1"],
    "quic_core": ["--runs", "1", "--batches", "5"],
    "api_limits": ["--runs", "1", "--requests", "50"],
    "fuzz": ["--scale", "0.002"],
    "rss": ["--runs", "1", "--settle", "1"],
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_benchmark_runs(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.json"
    args = SMALL[name] + ([] if name == "fuzz" else ["--out", str(out)])
    done = run_bench(name, args, tmp_path)
    if name == "fuzz":
        (total,) = [line.split() for line in done.stdout.splitlines() if line.startswith("total")]
        assert total[-2:] == ["0", "0"], done.stdout[-2000:]  # crashes, desyncs
    else:
        figures = json.loads(out.read_text())
        assert any(v > 0 for v in numbers(figures)), f"no measured figure in {figures}"


def numbers(value: object) -> list[float]:
    """Every number in a JSON document (booleans are not figures)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return []
