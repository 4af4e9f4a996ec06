"""The daemon: ``mycelium`` without a subcommand runs a node with the reference's flags."""

from __future__ import annotations

from typing import Any

import click

from ..identity import default_key_path
from .keys import check_key_directory
from .options import settings_from
from .serve import StartError, replace_process, run


def run_daemon(ctx: click.Context, params: dict[str, Any], private: bool) -> None:
    """Run the node with the parsed command line; in a fresh process (see serve.py) when the
    console script asked for that (``ctx.obj["replace_process"]``)."""
    settings, warnings, config_file = settings_from(ctx, params)
    check_key_directory(settings.key_file or default_key_path())
    launch = (settings, tuple(warnings), config_file, private)
    if ctx.obj.get("replace_process"):
        replace_process(launch)  # returns only where exec cannot work
    try:
        run(launch)
    except StartError as exc:
        raise click.ClickException(str(exc)) from None
