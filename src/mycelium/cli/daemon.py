"""The daemon: ``mycelium`` without a subcommand runs a node with the reference's flags."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

import click

from .. import logs
from ..identity import KeyFileError, default_key_path
from ..settings import Settings, SettingsError
from .keys import check_key_directory
from .options import settings_from

log = logging.getLogger("mycelium")


def run_daemon(ctx: click.Context, params: dict[str, Any], private: bool) -> None:
    settings, warnings, config_file = settings_from(ctx, params)
    logs.setup(settings.debug, settings.silent, settings.log_format)
    if config_file is not None:
        log.info("loaded config file", extra=logs.fields(path=config_file))
    for warning in warnings:
        log.warning("%s", warning)
    check_key_directory(settings.key_file or default_key_path())
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
