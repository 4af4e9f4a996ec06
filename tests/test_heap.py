"""The heap thresholds keep a busy node's working set mapped (mycelium/heap.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Allocate and free ~3 MB of 1 KB objects 20 times (a batch's worth of frames each time) and
# count the page faults of the 20 rounds after a first one.
_ROUNDS = textwrap.dedent(
    """
    import resource, sys
    from mycelium.heap import tune_heap
    tuned = tune_heap() if sys.argv[1] == "tuned" else None
    def batch():
        frames = [bytes(1000) + bytes([i % 256]) for i in range(3000)]
        del frames
    batch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        batch()
    print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_batches_stay_mapped_once_tuned() -> None:
    _, default_faults = _faults("default")
    tuned, tuned_faults = _faults("tuned")
    if tuned != "True":
        pytest.skip("no glibc mallopt here (another C library)")
    # glibc's defaults hand the freed top of the heap back after every round: each round
    # faults its ~3 MB in again (~750 pages); tuned, the rounds reuse the same pages.
    assert default_faults > 20 * 200
    assert tuned_faults < 100
