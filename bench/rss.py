"""Resident memory of a node at rest: ``mycelium --no-tun --disable-peer-discovery`` with a
fresh key and no peers (no root needed), read from /proc after it settled.

Figures, medians over the starts: VmRSS and its split into anonymous memory (the Python heap,
the libraries' written data) and file-backed pages (mapped library code and read-only data),
in MB (10^6 bytes); the mappings holding the most file-backed pages; then the first API
request (the HTTP stack loads on it): its latency and the resident size after it.

With ``MYCELIUM_REFERENCE_BIN`` naming a reference ``mycelium`` binary, it is started the same
way, alternating with ours.

    python bench/rss.py [--runs 3] [--settle 5]
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from runner import argument_parser, median, report

#: The console script beside this Python (its venv need not be activated), else on PATH.
_BESIDE = Path(sys.executable).with_name("mycelium")
OURS = str(_BESIDE) if _BESIDE.exists() else shutil.which("mycelium") or "mycelium"
REFERENCE = os.environ.get("MYCELIUM_REFERENCE_BIN", "")
_MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_kb(pid: int) -> dict[str, int]:
    fields = ("VmRSS", "RssAnon", "RssFile", "Threads")
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in fields:
            out[name] = int(value.split()[0])
    return out


def file_pages_kb(pid: int) -> Counter[str]:
    """kB of file-backed resident pages per mapped file (its private, written pages excluded:
    they count as anonymous)."""
    per: Counter[str] = Counter()
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if _MAPPING.match(line):
            parts = line.split()
            name = parts[5] if len(parts) > 5 and parts[5].startswith("/") else ""
        elif name and line.startswith(("Rss:", "Anonymous:")):
            kb = int(line.split()[1])
            per[name] += kb if line.startswith("Rss:") else -kb
    return per


def mb(kb: float) -> float:
    return round(kb * 1024 / 1e6, 2)


def one_start(binary: str, settle: float, workdir: Path) -> dict[str, Any]:
    api, rpc = free_port(), free_port()
    command = [
        binary,
        "--no-tun",
        "--disable-peer-discovery",
        "--silent",
        "-k",
        str(workdir / f"key-{api}.bin"),
        "--api-addr",
        f"127.0.0.1:{api}",
        "--jsonrpc-addr",
        f"127.0.0.1:{rpc}",
        "-t",
        "0",
        "-q",
        "0",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(settle)
        if proc.poll() is not None:
            raise RuntimeError(f"{binary} exited: {proc.communicate()[1][-2000:]}")
        rest = status_kb(proc.pid)
        files = file_pages_kb(proc.pid)
        start = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/api/v1/admin", timeout=10) as r:
            r.read()
        first_ms = (time.perf_counter() - start) * 1e3
        after = status_kb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return {"rest": rest, "files": files, "first_api_ms": first_ms, "after_api": after}


def summarise(starts: list[dict[str, Any]], top: int) -> dict[str, Any]:
    files: Counter[str] = Counter()
    for s in starts:
        for path, kb in s["files"].items():
            files[Path(path).name] += kb
    return {
        "starts": len(starts),
        "rss_mb": mb(median(s["rest"]["VmRSS"] for s in starts)),
        "anon_mb": mb(median(s["rest"]["RssAnon"] for s in starts)),
        "file_mb": mb(median(s["rest"]["RssFile"] for s in starts)),
        "threads": median(s["rest"]["Threads"] for s in starts),
        "file_pages_mb": {name: mb(kb / len(starts)) for name, kb in files.most_common(top)},
        "first_api_ms": round(median(s["first_api_ms"] for s in starts), 1),
        "rss_after_first_api_mb": mb(median(s["after_api"]["VmRSS"] for s in starts)),
    }


def main() -> None:
    p = argument_parser(__doc__, "rss")
    p.add_argument("--runs", type=int, default=3, help="starts per binary (median)")
    p.add_argument("--settle", type=float, default=5.0, help="seconds from start to reading")
    p.add_argument("--top", type=int, default=8, help="mappings listed by file-backed pages")
    args = p.parse_args()
    binaries = {"ours": OURS} | ({"reference": REFERENCE} if REFERENCE else {})
    starts: dict[str, list[dict[str, Any]]] = {label: [] for label in binaries}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for label, binary in binaries.items():
                starts[label].append(one_start(binary, args.settle, Path(tmp)))
    figures = {label: summarise(runs, args.top) for label, runs in starts.items()}
    for label, f in figures.items():
        print(
            f"{label}: {f['rss_mb']} MB resident at rest ({f['anon_mb']} anonymous, "
            f"{f['file_mb']} file-backed), {f['threads']:.0f} thread(s)"
        )
        for name, value in f["file_pages_mb"].items():
            print(f"    {value:6.2f} MB  {name}")
        print(
            f"    first API request {f['first_api_ms']} ms, then "
            f"{f['rss_after_first_api_mb']} MB resident"
        )
    report({"settle_s": args.settle, **figures}, args.out)


if __name__ == "__main__":
    sys.exit(main())
