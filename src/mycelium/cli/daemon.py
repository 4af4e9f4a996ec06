"""The daemon: ``mycelium`` without a subcommand runs a node with the reference's flags."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from ..identity import KeyFileError
from ..settings import Settings, SettingsError
from .options import settings_from

log = logging.getLogger("mycelium")


def setup_logging(debug: bool, silent: bool, log_format: str) -> None:
    level = logging.ERROR if silent else logging.DEBUG if debug else logging.INFO
    if log_format == "compact":
        fmt = "%(asctime)s %(levelname)5s %(name)s: %(message)s"
    else:
        fmt = "ts=%(asctime)s level=%(levelname)s target=%(name)s msg=%(message)r"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr)
    # --debug is about the node, not the libraries under it (netlink dumps every message).
    for library in ("pyroute2", "asyncio", "aioquic", "aiohttp"):
        logging.getLogger(library).setLevel(max(level, logging.WARNING))


def run_daemon(ctx: click.Context, params: dict[str, Any], private: bool) -> None:
    settings, warnings = settings_from(ctx, params)
    setup_logging(settings.debug, settings.silent, settings.log_format)
    for warning in warnings:
        log.warning("%s", warning)
    from ..daemon import node_config
    from ..tun.errors import TunError

    try:
        config = node_config(settings, private)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    from ..links.admission import raise_nofile_limit

    raise_nofile_limit()  # before any listener sizes its connection limits from it
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(settings, config))
    except (KeyFileError, TunError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for our loop only: the global policy stays asyncio's, because pyroute2 builds its
    own netlink loop from it and uvloop cannot open AF_NETLINK sockets."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(settings: Settings, config: Any) -> None:
    from ..daemon import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Daemon(settings, config):
        await stop.wait()
        log.info("shutting down")
