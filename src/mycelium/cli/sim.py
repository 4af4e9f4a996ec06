"""``mycelium sim``: run a topology on the simulator and print what happened."""

from __future__ import annotations

import json
import random
from pathlib import Path

import click

from ..routing.constants import FAST_HELLO, REFERENCE_HELLO


@click.command("sim")
@click.option(
    "--topology", "spec", metavar="SPEC", help="line:N, ring:N, grid:WxH or random:N:DEGREE."
)
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    help='Topology file: {"nodes": [...], "links": [{"a", "b", "latency_ms"}]}.',
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed for keys, latencies and loss."
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Virtual seconds to run.",
)
@click.option(
    "--cut",
    "cuts",
    multiple=True,
    metavar="A-B@T",
    help="Take the link A-B down at virtual second T (repeatable).",
)
@click.option(
    "--silent",
    is_flag=True,
    help="Cuts are silent: the link stops carrying packets and neither end is told, as when a "
    "cable is pulled somewhere between (only the dead-neighbour check finds it).",
)
@click.option(
    "--timers",
    type=click.Choice(["pymycelium", "reference"]),
    default="pymycelium",
    show_default=True,
    help="Hello timers: ours (a Hello every 3 s, dead after 10 s) or the reference's (20 s, 43 s).",
)
@click.option(
    "--sample-pairs",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Source/destination pairs checked for loops at every sample.",
)
@click.option(
    "--no-traffic",
    is_flag=True,
    help="No probe packets between the checked pairs (a quiet network).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def sim_command(
    spec: str | None,
    file: Path | None,
    seed: int,
    duration: float,
    cuts: tuple[str, ...],
    silent: bool,
    timers: str,
    sample_pairs: int,
    no_traffic: bool,
    as_json: bool,
) -> None:
    """Simulate a network of routers on a virtual clock and report convergence and loops."""
    if (spec is None) == (file is None):
        raise click.UsageError("give exactly one of --topology and --file")
    # Imported here: every mycelium command, the daemon too, builds this command's options.
    from ..sim import Cut, TopologyError, load_file, parse_spec, run

    try:
        if file is not None:
            topology = load_file(file)
        else:
            assert spec is not None
            topology = parse_spec(spec, random.Random(seed))
        report = run(
            topology,
            seed,
            duration,
            [Cut.parse(c) for c in cuts],
            sample_pairs,
            not no_traffic,
            silent=silent,
            hello=REFERENCE_HELLO if timers == "reference" else FAST_HELLO,
        )
    except TopologyError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        click.echo(f"{key:28} {value}")
