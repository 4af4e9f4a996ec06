"""The daemon: ``mycelium`` without a subcommand runs a node with the reference's flags."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..config import ConfigError, load_config
from ..identity import KeyFileError
from ..links.endpoint import Endpoint, EndpointError

log = logging.getLogger("mycelium")

DEFAULTS: dict[str, Any] = {
    "peers": (),
    "tcp_listen_port": 9651,
    "disable_quic": False,
    "quic_listen_port": 9651,
    "peer_discovery_port": 9650,
    "disable_peer_discovery": False,
    "peer_discovery_interfaces": (),
    "api_addr": "127.0.0.1:8989",
    "jsonrpc_addr": "127.0.0.1:8990",
    "no_tun": False,
    "tun_name": "mycelium",
    "metrics_api_address": None,
    "firewall_mark": None,
    "update_workers": 1,
    "topic_config": None,
    "cdn_cache": None,
    "vsock_listen_port": None,
    "enable_dns": False,
    "dns_upstream": (),
    "network_name": None,
    "network_key_file": None,
}

NODE_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "-c",
        "--config-file",
        type=click.Path(path_type=Path),
        default=None,
        help="Configuration file (TOML).",
    ),
    click.option("-d", "--debug", is_flag=True, help="Enable debug logging."),
    click.option("--silent", is_flag=True, help="Disable all logs except error logs."),
    click.option(
        "--log-format",
        type=click.Choice(["compact", "logfmt", "plain"]),
        default="compact",
        show_default=True,
        help="The logging format to use.",
    ),
    click.option(
        "--peers",
        multiple=True,
        metavar="ENDPOINT",
        help="Peers to connect to (repeatable, e.g. tcp://[2001:db8::1]:9651).",
    ),
    click.option(
        "-t",
        "--tcp-listen-port",
        type=click.IntRange(0, 65535),
        default=DEFAULTS["tcp_listen_port"],
        show_default=True,
        help="Port to listen on for tcp connections.",
    ),
    click.option(
        "--disable-quic", is_flag=True, help="Disable quic protocol for connecting to peers."
    ),
    click.option(
        "-q",
        "--quic-listen-port",
        type=click.IntRange(0, 65535),
        default=DEFAULTS["quic_listen_port"],
        show_default=True,
        help="Port to listen on for quic connections.",
    ),
    click.option(
        "--peer-discovery-port",
        type=click.IntRange(0, 65535),
        default=DEFAULTS["peer_discovery_port"],
        show_default=True,
        help="Port to use for link local peer discovery (UDP).",
    ),
    click.option("--disable-peer-discovery", is_flag=True, help="Disable peer discovery."),
    click.option(
        "--peer-discovery-interface",
        "peer_discovery_interfaces",
        multiple=True,
        help="Limit peer discovery to this interface (repeatable).",
    ),
    click.option(
        "--api-addr",
        default=DEFAULTS["api_addr"],
        show_default=True,
        help="Address of the HTTP API server.",
    ),
    click.option(
        "--jsonrpc-addr",
        default=DEFAULTS["jsonrpc_addr"],
        show_default=True,
        help="Address of the JSON-RPC API server.",
    ),
    click.option("--no-tun", is_flag=True, help="Run without creating a TUN interface."),
    click.option("--tun-name", default=None, help="Name to use for the TUN interface."),
    click.option(
        "--metrics-api-address", default=None, help="Address on which to expose prometheus metrics."
    ),
    click.option(
        "--firewall-mark",
        type=click.IntRange(0, 0xFFFFFFFF),
        default=None,
        help="The firewall mark to set on the mycelium sockets.",
    ),
    click.option(
        "--update-workers",
        type=click.IntRange(1, 254),
        default=1,
        show_default=True,
        help="Accepted for compatibility and ignored (the reference's number of route-update "
        "workers; this node processes updates in one task).",
    ),
    click.option(
        "--topic-config",
        type=click.Path(path_type=Path),
        default=None,
        help="A .toml file with the message topic configuration.",
    ),
    click.option(
        "--cdn-cache",
        type=click.Path(path_type=Path),
        default=None,
        help="Cache directory for the CDN module.",
    ),
    click.option(
        "--vsock-listen-port",
        type=click.IntRange(0, 0xFFFFFFFF),
        default=None,
        help="Port to listen on for vsock connections.",
    ),
    click.option(
        "--enable-dns",
        is_flag=True,
        help="Answer DNS on UDP [::]:53 by forwarding to the nearest public node's resolver "
        "(1.1.1.1 while none is reachable); the node does not start if the port cannot be "
        "bound. Queries reach the overlay through the TUN interface, so with --no-tun they fail "
        "once a public node is chosen.",
    ),
    click.option(
        "--dns-upstream",
        multiple=True,
        metavar="IPV6",
        help="(pymycelium) Forward DNS to these overlay addresses instead of the public nodes "
        "(repeatable; the cheapest reachable one is used).",
    ),
    # Only `mycelium-private` shows these (the reference's separate binary); see private_main.
    click.option(
        "--network-name",
        default=None,
        hidden=True,
        help="Name of the private network (2 to 64 bytes).",
    ),
    click.option(
        "--network-key-file",
        type=click.Path(path_type=Path),
        default=None,
        hidden=True,
        help="File holding the private network's 32-byte key.",
    ),
]


def node_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(NODE_OPTIONS):
        func = option(func)
    return func


def merge(
    ctx: click.Context, params: dict[str, Any], file_values: dict[str, Any]
) -> dict[str, Any]:
    """Flags given on the command line win over the file, the file over the defaults."""
    merged: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        source = ctx.get_parameter_source(key) if key in params else None
        given = source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")
        if given and params[key] not in ((), None):
            merged[key] = params[key]
        elif isinstance(default, bool) and params.get(key):
            merged[key] = True
        elif key in file_values:
            merged[key] = file_values[key]
        else:
            merged[key] = default
    return merged


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


def run_daemon(ctx: click.Context, key_file: Path, params: dict[str, Any]) -> None:
    setup_logging(params["debug"], params["silent"], params["log_format"])
    try:
        file_values, warnings = load_config(params["config_file"])
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in warnings:
        log.warning("%s", warning)
    settings = merge(ctx, params, file_values)
    try:
        peers = [Endpoint.parse(p) for p in settings["peers"]]
    except EndpointError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        settings["dns_upstream"] = [
            ipaddress.IPv6Address(str(a)).packed for a in settings["dns_upstream"]
        ]
    except ValueError as exc:
        raise click.ClickException(f"--dns-upstream: {exc}") from None

    from ..links.private import PrivateNetwork, PrivateNetworkError
    from ..node import NodeConfig
    from ..tun.errors import TunError

    private = None
    name, network_key = settings["network_name"], settings["network_key_file"]
    if (ctx.find_root().obj or {}).get("private_binary"):
        if name is None or network_key is None:
            raise click.UsageError("--network-name and --network-key-file are both required")
        try:
            private = PrivateNetwork.load(name, Path(network_key))
        except PrivateNetworkError as exc:
            raise click.ClickException(str(exc)) from None
    elif name is not None or network_key is not None:
        raise click.UsageError("private networks are run with `mycelium-private`")

    topic_config = None
    if settings["topic_config"] is not None:
        from ..messages.topics import load_topic_config

        path = Path(settings["topic_config"])
        try:
            topic_config = load_topic_config(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise click.ClickException(f"topic config {path}: {exc}") from None

    config = NodeConfig(
        key_file=key_file,
        peers=peers,
        tcp_listen_port=settings["tcp_listen_port"],
        quic_listen_port=settings["quic_listen_port"],
        disable_quic=settings["disable_quic"] or private is not None,
        private=private,
        topic_config=topic_config,
        no_tun=settings["no_tun"],
        tun_name=settings["tun_name"],
        firewall_mark=settings["firewall_mark"],
        disable_peer_discovery=settings["disable_peer_discovery"],
        peer_discovery_port=settings["peer_discovery_port"],
        peer_discovery_interfaces=list(settings["peer_discovery_interfaces"]),
        vsock_listen_port=settings["vsock_listen_port"],
    )
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(config, settings))
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


async def _serve(config: Any, settings: dict[str, Any]) -> None:
    from ..node import Node

    cdn = None
    if settings["cdn_cache"] is not None:
        from ..cdn.gateway import Gateway

        # Like the reference, a gateway that cannot start stops the node from starting.
        cdn = Gateway(Path(settings["cdn_cache"]))
        await cdn.serve()
    node = Node(config)
    dns = None
    if settings["enable_dns"]:
        from ..dns.resolver import DnsForwarder
        from ..dns.upstream import PUBLIC_NODES, choose

        def chooser(candidates: Any) -> bytes | None:
            return node.with_router(lambda router, now: choose(router, candidates, now))

        dns = DnsForwarder(chooser, candidates=settings["dns_upstream"] or PUBLIC_NODES)
        await dns.bind()  # a taken port 53 stops the start, as with the reference
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await node.start()
    if dns is not None:
        dns.start()
    servers = await _start_api(node, settings)
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        # Within the 2 s a service manager allows: API clients still long-polling, or links
        # slow to close, are cut off rather than delaying the exit (or failing it).
        for what, closing, limit in (
            ("API servers", servers.close() if servers is not None else None, 1.0),
            ("CDN gateway", cdn.close() if cdn is not None else None, 0.2),
            ("DNS resolver", dns.close() if dns is not None else None, 0.2),
            ("node", node.stop(), 0.8),
        ):
            if closing is None:
                continue
            try:
                await asyncio.wait_for(closing, limit)
            except TimeoutError:
                log.warning("%s did not stop within %.1f s; exiting anyway", what, limit)


async def _start_api(node: Any, settings: dict[str, Any]) -> Any:
    try:
        from ..api import start_servers
    except ImportError:
        return None
    return await start_servers(
        node,
        api_addr=settings["api_addr"],
        jsonrpc_addr=settings["jsonrpc_addr"],
        metrics_addr=settings["metrics_api_address"],
    )
