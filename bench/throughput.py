"""TCP throughput across the overlay between two of our nodes in two network namespaces (iperf3),
with the raw veth measured in the same run as the baseline. Needs root and iperf3.
``bench/compare.py`` runs the same measurement against the reference.

    python bench/throughput.py [--seconds 10] [--runs 3] [--transport tcp|quic|tls]
    python bench/throughput.py --profile DIR    # both nodes under cProfile: DIR/a.prof, b.prof
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pair
from runner import RESULTS, argument_parser, median, report


def profiled(binary: str, out: Path, wrapper: Path) -> str:
    """A wrapper script running ``binary`` (one of our console scripts) under cProfile. The node
    runs in the wrapper's own process: the console script would replace its process with a
    fresh interpreter (``cli/serve.py``) and leave the profiler behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    group = "private_cli" if Path(binary).name == "mycelium-private" else "cli"
    program = wrapper.with_suffix(".py")
    program.write_text(
        "import cProfile, sys\n"
        f"from mycelium.cli.main import {group}, normalise\n"
        "# click's group exits through SystemExit, which cProfile.run catches before writing.\n"
        f"cProfile.run(\"{group}(normalise(sys.argv[1:]), 'mycelium', obj={{}})\", "
        f"{str(out.resolve())!r})\n"
    )
    python = pair.interpreter(binary) or sys.executable
    wrapper.write_text(f'#!/bin/sh\nexec {python} {program} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def main() -> None:
    p = argument_parser(__doc__, "throughput")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--transport",
        choices=["tcp", "quic", "tls"],
        default="tcp",
        help="tls runs both nodes as mycelium-private with a shared key",
    )
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run both nodes under cProfile and write a.prof/b.prof into this directory",
    )
    args = p.parse_args()
    if args.out == RESULTS / "throughput.json":
        args.out = RESULTS / f"throughput_{args.transport}.json"
    with tempfile.TemporaryDirectory() as tmp:
        extra: tuple[str, ...] = ()
        binary = pair.MYCELIUM
        if args.transport == "tls":
            key = Path(tmp) / "net.key"
            key.write_bytes(os.urandom(32))
            extra = ("--network-name", "bench", "--network-key-file", str(key))
            binary = shutil.which("mycelium-private") or "mycelium-private"
        bin_a = bin_b = binary
        if args.profile is not None:
            bin_a = profiled(binary, args.profile / "a.prof", Path(tmp) / "a.sh")
            bin_b = profiled(binary, args.profile / "b.prof", Path(tmp) / "b.sh")
        proto = "quic" if args.transport == "quic" else "tcp"
        running = pair.start(
            f"throughput-{args.transport}", proto, binary_a=bin_a, binary_b=bin_b, extra=extra
        )
        raw, overlay = [], []
        try:
            for _ in range(args.runs):
                raw.append(pair.bulk(running, args.seconds, address=running.underlay_a))
                overlay.append(pair.bulk(running, args.seconds))
                print(f"raw veth {raw[-1]['gbit_s']} Gbit/s, overlay {overlay[-1]}", flush=True)
            for node in (running.a, running.b):
                running.net.kill(node)  # SIGTERM: a clean exit, so cProfile writes its file
        finally:
            running.close()
    gbit = [r["gbit_s"] for r in overlay]
    raw_gbit = [r["gbit_s"] for r in raw]
    cpu = [r["node_cpu_s_per_gb"] for r in overlay]
    report(
        {
            "transport": args.transport,
            "seconds_per_run": args.seconds,
            "runs": args.runs,
            "mtu": 1400,
            "raw_veth_gbit_s": raw_gbit,
            "overlay_gbit_s": gbit,
            "raw_veth_median_gbit_s": median(raw_gbit),
            "overlay_median_gbit_s": median(gbit),
            "ratio_overlay_to_raw": round(median(gbit) / median(raw_gbit), 4),
            # CPU seconds both nodes spent per GB carried.
            "node_cpu_s_per_gb": cpu,
            "node_cpu_s_per_gb_median": median(cpu),
            "overlay_runs": overlay,
        },
        args.out,
        show=True,
    )


if __name__ == "__main__":
    main()
