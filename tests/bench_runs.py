"""Running a benchmark script of bench/ from a test, at whatever size the test asks for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_bench(name: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python bench/NAME.py ARGS`` in ``cwd``; asserts that it exited cleanly."""
    done = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done
