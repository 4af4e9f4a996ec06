"""Entry points of the ``mycelium`` and ``mycelium-private`` console scripts."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from .. import REFERENCE_VERSION, __version__
from ..identity import default_key_path
from .argv import normalise
from .daemon import run_daemon
from .options import node_options

#: Subcommand -> (module, attribute). Imported when invoked or listed (``--help``), so that
#: running the node, the common case, does not hold the client commands in memory
#: (tests/test_lazy_imports.py).
SUBCOMMANDS = {
    "inspect": (".keys", "inspect_cmd"),
    "generate-keys": (".keys", "generate_keys_cmd"),
    "status": (".status", "status_cmd"),
    "sim": (".sim", "sim_command"),
    "message": (".message", "message_group"),
    "peers": (".client", "peers_group"),
    "routes": (".client", "routes_group"),
    "stats": (".client", "stats_group"),
    "proxy": (".client", "proxy_group"),
}


class LazyGroup(click.Group):
    """A group whose subcommands (``SUBCOMMANDS``) load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        command: click.Command = getattr(importlib.import_module(target[0], __package__), target[1])
        return command


def build_cli(private: bool) -> click.Group:
    """The command group; ``private`` shows the private network's options (mycelium-private)."""

    @click.group(
        cls=LazyGroup,
        invoke_without_command=True,
        context_settings={"help_option_names": ["-h", "--help"]},
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

    return group


cli = build_cli(private=False)
private_cli = build_cli(private=True)


def _run(group: click.Group, prog_name: str) -> None:
    try:
        args = normalise(sys.argv[1:])
    except click.UsageError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    group(args=args, prog_name=prog_name, obj={"replace_process": True})


def main() -> None:
    _run(cli, "mycelium")


def private_main() -> None:
    """``mycelium-private``: the same node, in a private network (TLS-PSK, no QUIC)."""
    _run(private_cli, "mycelium-private")
