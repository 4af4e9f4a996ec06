"""What every benchmark in bench/ shares: repeated runs, medians, process CPU and memory, and one
JSON report format (figures plus the machine and Python that produced them).

Benchmarks run as scripts (``python bench/NAME.py``), so this directory is on ``sys.path`` and
they import this module as ``runner``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def percentile(values: Iterable[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank; 0 for no values)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def rotated(labels: list[str], r: int) -> list[str]:
    """Round ``r``'s order of interleaved configurations: each goes first in turn."""
    k = r % len(labels)
    return labels[k:] + labels[:k]


def summarise_rounds(runs: list[dict[str, Any]], figures: list[str]) -> dict[str, Any]:
    """Median of each figure over the rounds that did not fail, and the failures."""
    ok = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"rounds_ok": len(ok), "rounds": len(runs)}
    for key in figures:
        values = [r[key] for r in ok if r.get(key) is not None]
        out[key] = round(median(values), 3) if values else None
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        out["errors"] = errors
    return out


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` to three places; None when either is missing (or ``b`` is zero)."""
    return round(a / b, 3) if a is not None and b else None


def rates(work: Callable[[], int], runs: int) -> list[float]:
    """Items per second of ``runs`` calls of ``work`` (which returns how many items it did)."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        count = work()
        out.append(count / (time.perf_counter() - start))
    return out


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time the processes used so far (robust on a shared, busy machine)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident set size of a running process, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def environment() -> dict[str, Any]:
    """What produced the figures: numbers from two machines or two Pythons do not compare."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "argv": sys.argv[1:],
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def argument_parser(doc: str | None, name: str) -> argparse.ArgumentParser:
    """An argument parser with ``--out`` defaulting to ``bench/results/NAME.json``."""
    p = argparse.ArgumentParser(
        description=(doc or "").strip().splitlines()[0] if doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=RESULTS / f"{name}.json")
    return p


def report(figures: dict[str, Any], out: Path, *, show: bool = False) -> Path:
    """Write ``figures`` with the environment as JSON to ``out`` (and print them if ``show``)."""
    document = {**figures, "environment": environment()}
    if show:
        for key, value in figures.items():
            print(f"{key:32} {value}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out}")
    return out
