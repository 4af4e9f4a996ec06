"""glibc heap settings for a process that forwards packets.

Every batch of packets allocates and frees a few megabytes (frames, ciphertexts, the transports'
read buffers of up to 256 KiB). With glibc's defaults the top of the heap is handed back to the
kernel as soon as 128 KiB lie free there, and allocations above a sliding threshold get their
own mapping: both mean fresh pages, so a busy node spent about a tenth of its time in page
faults. Fixed thresholds keep the working set mapped: up to 16 MiB of free heap stay with the
process (bounded by its own peak), only blocks of 1 MiB and more (large messages) get their own
mapping and go back on free.
"""

from __future__ import annotations

import sys

#: mallopt(3) parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

TRIM_THRESHOLD = 16 << 20
MMAP_THRESHOLD = 1 << 20


def tune_heap() -> bool:
    """Apply the thresholds; False where there is no glibc ``mallopt`` to take them (another
    C library, another system), which only costs speed."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
