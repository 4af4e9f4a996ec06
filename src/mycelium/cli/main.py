"""Entry point of the ``mycelium`` console script."""

from __future__ import annotations

from pathlib import Path

import click

from .. import __version__
from ..identity import default_key_path
from .keys import generate_keys_cmd, inspect_cmd


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="mycelium")
@click.option(
    "-k",
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Path to the private key file; created if it does not exist.",
)
@click.pass_context
def cli(ctx: click.Context, key_file: Path | None) -> None:
    """Mycelium: an end-to-end encrypted IPv6 overlay network node."""
    ctx.obj = {"key_file": key_file or default_key_path()}
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


cli.add_command(inspect_cmd)
cli.add_command(generate_keys_cmd)


def main() -> None:
    cli()
