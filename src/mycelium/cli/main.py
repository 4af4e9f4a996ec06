"""Entry point of the ``mycelium`` console script."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..identity import default_key_path
from .argv import hoist_global_options
from .client import COMMANDS as CLIENT_COMMANDS
from .daemon import node_options, run_daemon
from .keys import generate_keys_cmd, inspect_cmd
from .message import message_group
from .sim import sim_command


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", message="%(prog)s %(version)s")
@click.option(
    "-k",
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Path to the private key file; created if it does not exist.",
)
@node_options
@click.pass_context
def cli(ctx: click.Context, key_file: Path | None, **params: Any) -> None:
    """Mycelium: an end-to-end encrypted IPv6 overlay network node.

    Without a subcommand, runs the node.
    """
    ctx.obj = {**(ctx.obj or {}), "key_file": key_file or default_key_path(), **params}
    if ctx.invoked_subcommand is None:
        run_daemon(ctx, ctx.obj["key_file"], params)


cli.add_command(inspect_cmd)
cli.add_command(generate_keys_cmd)
cli.add_command(sim_command)
cli.add_command(message_group)
for command in CLIENT_COMMANDS:
    cli.add_command(command)


def expand_peers(args: list[str]) -> list[str]:
    """Accept the reference's ``--peers A B C`` (clap ``num_args = 1..``) besides the repeated
    ``--peers A --peers B`` that click understands: endpoints always contain ``://``."""
    out: list[str] = []
    in_peers = False
    for arg in args:
        if arg == "--peers":
            in_peers = True
            continue
        if in_peers and "://" in arg and not arg.startswith("-"):
            out += ["--peers", arg]
            continue
        in_peers = False
        out.append(arg)
    return out


def main() -> None:
    cli(args=hoist_global_options(expand_peers(sys.argv[1:])), prog_name="mycelium")


def private_main() -> None:
    """``mycelium-private``: the same node, in a private network (TLS-PSK, no QUIC)."""
    cli(
        args=hoist_global_options(expand_peers(sys.argv[1:])),
        prog_name="mycelium-private",
        obj={"private_binary": True},
    )
