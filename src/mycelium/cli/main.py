"""Entry points of the ``mycelium`` and ``mycelium-private`` console scripts."""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import REFERENCE_VERSION, __version__
from ..identity import default_key_path
from .argv import normalise
from .client import COMMANDS as CLIENT_COMMANDS
from .daemon import run_daemon
from .keys import generate_keys_cmd, inspect_cmd
from .message import message_group
from .options import node_options
from .sim import sim_command
from .status import status_cmd


def build_cli(private: bool) -> click.Group:
    """The command group; ``private`` shows the private network's options (mycelium-private)."""

    @click.group(
        invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
    )
    @click.version_option(
        __version__,
        "-V",
        "--version",
        message=f"%(prog)s %(version)s (pymycelium, speaks the mycelium {REFERENCE_VERSION} "
        "protocol)",
    )
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

    commands = (inspect_cmd, generate_keys_cmd, status_cmd, sim_command, message_group)
    for command in (*commands, *CLIENT_COMMANDS):
        group.add_command(command)
    return group


cli = build_cli(private=False)
private_cli = build_cli(private=True)


def _run(group: click.Group, prog_name: str) -> None:
    try:
        args = normalise(sys.argv[1:])
    except click.UsageError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    group(args=args, prog_name=prog_name)


def main() -> None:
    _run(cli, "mycelium")


def private_main() -> None:
    """``mycelium-private``: the same node, in a private network (TLS-PSK, no QUIC)."""
    _run(private_cli, "mycelium-private")
