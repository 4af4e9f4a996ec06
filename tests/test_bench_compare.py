"""bench/compare.py's paired ratios: each round's own ratio, then the median over the rounds."""

from __future__ import annotations

import sys
from pathlib import Path

# Appended, not inserted: bench/'s script names must not shadow anything the suite imports.
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))

import compare


def test_paired_ratios_take_each_rounds_ratio_and_skip_failed_rounds() -> None:
    runs = {
        # The machine halves its speed after round 1: the ratio of the medians (1.0 / 1.5)
        # would say 0.667, each round says 0.5.
        "ours-tcp": [{"gbit_s": 1.0, "node_cpu_s_per_gb": 9.0}, {"gbit_s": 0.5}, {"error": "x"}],
        "ref-tcp": [{"gbit_s": 2.0, "node_cpu_s_per_gb": 6.0}, {"gbit_s": 1.0}, {"gbit_s": 1.5}],
        "ours-quic": [{"gbit_s": 0.6}, {"gbit_s": 0.3}, {"gbit_s": 0.4}],
    }
    assert compare.paired_ratios(runs) == {
        "tcp_throughput_ours_over_ref_paired": 0.5,
        "tcp_cpu_per_gb_ours_over_ref_paired": 1.5,
        "quic_over_tcp_ours_paired": 0.6,
    }


def test_without_the_reference_only_ours_is_paired() -> None:
    runs = {"ours-tcp": [{"gbit_s": 1.0}], "ours-quic": [{"gbit_s": 0.5}]}
    assert compare.paired_ratios(runs) == {"quic_over_tcp_ours_paired": 0.5}
