"""Entry points of the ``mycelium`` and ``mycelium-private`` console scripts."""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from ..identity import default_key_path
from .argv import hoist_global_options
from .client import COMMANDS as CLIENT_COMMANDS
from .daemon import run_daemon
from .keys import generate_keys_cmd, inspect_cmd
from .message import message_group
from .options import node_options
from .sim import sim_command


def build_cli(private: bool) -> click.Group:
    """The command group; ``private`` shows the private network's options (mycelium-private)."""

    @click.group(
        invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
    )
    @click.version_option(__version__, "-V", "--version", message="%(prog)s %(version)s")
    @node_options(private)
    @click.pass_context
    def group(ctx: click.Context, **params: Any) -> None:
        """Mycelium: an end-to-end encrypted IPv6 overlay network node.

        Without a subcommand, runs the node.
        """
        key_file = params["key_file"] or default_key_path()
        ctx.obj = {**(ctx.obj or {}), **params, "key_file": key_file}
        if ctx.invoked_subcommand is None:
            run_daemon(ctx, params, private)

    for command in (inspect_cmd, generate_keys_cmd, sim_command, message_group, *CLIENT_COMMANDS):
        group.add_command(command)
    return group


cli = build_cli(private=False)
private_cli = build_cli(private=True)


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
    private_cli(args=hoist_global_options(expand_peers(sys.argv[1:])), prog_name="mycelium-private")
