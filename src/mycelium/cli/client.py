"""Client subcommands that talk to a running node's REST API (``--api-addr``).

Every ``--json`` prints indented JSON (the message commands, which have no ``--json``, print one
compact JSON document per line, as the reference does).
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import click

from ..settings import BY_NAME, listen_address
from ..socket_address import parse_socket_address, socket_text
from .table import format_bytes, format_seconds, render

DEFAULT_API: str = BY_NAME["api_addr"].default
#: Our status document (api/status.py; not imported, to keep aiohttp out of the client).
STATUS_PATH = "/api/v1/pymycelium/status"


class ApiClient:
    def __init__(self, address: str) -> None:
        self.root = f"http://{address}"
        self.base = f"{self.root}/api/v1"
        self.address = address

    def call(
        self, method: str, path: str, body: Any = None, timeout: float | None = 10
    ) -> tuple[int, bytes]:
        # Imported here: the daemon imports this module for its command table, and urllib's
        # HTTP client (with the email package) is 1 MB a running node never needs.
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        url = (self.root if path.startswith("/api/") else self.base) + path
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise click.ClickException(
                f"cannot reach the node's API at {self.address} ({reason}); is a node running?"
            ) from None

    def get_status(self) -> dict[str, Any] | None:
        """Our node's status document; None from a node without it (a reference node)."""
        status, body = self.call("GET", STATUS_PATH)
        if status != 200:
            return None
        try:
            value = json.loads(body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def get_json(self, path: str) -> tuple[Any, bytes]:
        status, body = self.call("GET", path)
        if status != 200:
            raise click.ClickException(f"GET {path} failed with HTTP {status}: {body.decode()}")
        try:
            return json.loads(body), body
        except ValueError:
            raise click.ClickException(f"GET {path}: the node answered with invalid JSON") from None


def client_for(ctx: click.Context) -> ApiClient:
    address = (ctx.find_root().obj or {}).get("api_addr") or DEFAULT_API
    try:
        listen_address(address)
    except ValueError as exc:
        raise click.ClickException(f"--api-addr: {exc}") from None
    return ApiClient(address)


def echo_json(value: Any) -> None:
    """What ``--json`` prints: indented, keys in the API's order."""
    click.echo(json.dumps(value, indent=2))


json_flag = click.option("--json", "as_json", is_flag=True, help="Print in JSON format.")


@click.group("peers")
def peers_group() -> None:
    """Actions related to peers (list, remove, add)."""


@peers_group.command("list")
@json_flag
@click.pass_context
def peers_list(ctx: click.Context, as_json: bool) -> None:
    """List the connected peers."""
    client = client_for(ctx)
    peers, _ = client.get_json("/admin/peers")
    if as_json:
        echo_json(peers)
        return
    # Link cost and round trip come from our status document (absent on a reference node).
    extra = {p["endpoint"]: p for p in (client.get_status() or {}).get("peers", [])}
    rows: list[list[object]] = [
        [
            "Protocol",
            "Socket",
            "Type",
            "Connection",
            "Rx total",
            "Tx total",
            "Discovered",
            "Last connection",
        ]
    ]
    if extra:
        rows[0] += ["Link cost", "RTT"]
    for p in peers:
        endpoint = p["endpoint"]
        addr = endpoint["addr"]
        socket_text = addr.get("socket") or "{cid}:{port}".format(**addr.get("vsock", {}))
        last = p.get("lastConnected")
        row: list[object] = [
            endpoint["proto"],
            socket_text,
            p["type"],
            p["connectionState"],
            format_bytes(p["rxBytes"]),
            format_bytes(p["txBytes"]),
            format_seconds(p["discovered"]),
            "Never connected" if last is None else format_seconds(last),
        ]
        if extra:
            ours = extra.get(f"{endpoint['proto']}://{socket_text}", {})
            row += [_or_dash(ours.get("linkCost")), _ms(ours.get("rttMs"))]
        rows.append(row)
    click.echo(render(rows))


def _or_dash(value: object) -> object:
    return "-" if value is None else value


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def _each_peer(ctx: click.Context, peers: tuple[str, ...], method: str) -> None:
    client = client_for(ctx)
    for peer in peers:
        if method == "POST":
            status, body = client.call("POST", "/admin/peers", {"endpoint": peer})
        else:
            status, body = client.call("DELETE", "/admin/peers/" + urllib.parse.quote(peer, ""))
        if status != 204:
            raise click.ClickException(f"{peer}: HTTP {status}: {body.decode(errors='replace')}")


@peers_group.command("add")
@click.argument("peers", nargs=-1, required=True)
@click.pass_context
def peers_add(ctx: click.Context, peers: tuple[str, ...]) -> None:
    """Add peer(s)."""
    _each_peer(ctx, peers, "POST")


@peers_group.command("remove")
@click.argument("peers", nargs=-1, required=True)
@click.pass_context
def peers_remove(ctx: click.Context, peers: tuple[str, ...]) -> None:
    """Remove peer(s)."""
    _each_peer(ctx, peers, "DELETE")


@click.group("routes")
def routes_group() -> None:
    """Actions related to routes (selected, fallback, queried)."""


def _routes(ctx: click.Context, path: str, as_json: bool) -> None:
    routes, _ = client_for(ctx).get_json(path)
    if as_json:
        echo_json(routes)
        return
    rows: list[list[object]] = [["Subnet", "Next Hop", "Metric", "Seq No"]]
    rows += [[r["subnet"], r["nextHop"], r["metric"], r["seqno"]] for r in routes]
    click.echo(render(rows))


@routes_group.command("selected")
@json_flag
@click.pass_context
def routes_selected(ctx: click.Context, as_json: bool) -> None:
    """Print all selected routes."""
    _routes(ctx, "/admin/routes/selected", as_json)


@routes_group.command("fallback")
@json_flag
@click.pass_context
def routes_fallback(ctx: click.Context, as_json: bool) -> None:
    """Print all fallback routes."""
    _routes(ctx, "/admin/routes/fallback", as_json)


@routes_group.command("queried")
@json_flag
@click.pass_context
def routes_queried(ctx: click.Context, as_json: bool) -> None:
    """Print the currently queried subnets."""
    queries, _ = client_for(ctx).get_json("/admin/routes/queried")
    if as_json:
        echo_json(queries)
        return
    rows: list[list[object]] = [["Subnet", "Query expiration"]]
    rows += [[q["subnet"], q["expiration"]] for q in queries]
    click.echo(render(rows))


@click.group("stats")
def stats_group() -> None:
    """Actions related to packet statistics."""


@stats_group.command("packets")
@json_flag
@click.pass_context
def stats_packets(ctx: click.Context, as_json: bool) -> None:
    """Print packet statistics by source and destination IP."""
    stats, _ = client_for(ctx).get_json("/admin/stats/packets")
    if as_json:
        echo_json(stats)
        return
    for title, key, column in (
        ("Statistics by Source IP:", "bySource", "Source IP"),
        ("\nStatistics by Destination IP:", "byDestination", "Destination IP"),
    ):
        click.echo(title)
        rows: list[list[object]] = [[column, "Packets", "Bytes"]]
        rows += [[e["ip"], e["packetCount"], e["byteCount"]] for e in stats[key]]
        click.echo(render(rows))


@click.group("proxy")
def proxy_group() -> None:
    """Actions related to the SOCKS5 proxy."""


@proxy_group.command("list")
@json_flag
@click.pass_context
def proxy_list(ctx: click.Context, as_json: bool) -> None:
    """List known proxies."""
    proxies, _ = client_for(ctx).get_json("/admin/proxy")
    if as_json:
        echo_json(proxies)
        return
    click.echo(render([["IPv6 Address"], *[[ip] for ip in proxies]]))


@proxy_group.command("connect")
@click.option("--remote", default=None, help="Remote [IPV6]:PORT of the proxy to use.")
@json_flag
@click.pass_context
def proxy_connect(ctx: click.Context, remote: str | None, as_json: bool) -> None:
    """Connect to a proxy, optionally a given one."""
    if remote is not None:
        try:
            host, port = parse_socket_address(remote)
        except ValueError as exc:
            raise click.ClickException(f"invalid --remote socket address: {exc}") from None
        remote = socket_text(host, port)
    status, body = client_for(ctx).call("POST", "/admin/proxy", {"remote": remote})
    if status == 404:
        raise click.ClickException("No valid proxy available or connection failed")
    if not 200 <= status < 300:
        text = body.decode(errors="replace")
        raise click.ClickException(f"Proxy connect failed, status {status}, body: {text}")
    if as_json:
        echo_json(json.loads(body))
    else:
        click.echo(json.loads(body))


def _no_content(ctx: click.Context, method: str, path: str) -> None:
    status, body = client_for(ctx).call(method, path)
    if status >= 400:
        raise click.ClickException(f"HTTP {status}: {body.decode(errors='replace')}")


@proxy_group.command("disconnect")
@click.pass_context
def proxy_disconnect(ctx: click.Context) -> None:
    """Disconnect from the current proxy."""
    _no_content(ctx, "DELETE", "/admin/proxy")


@proxy_group.group("probe")
def proxy_probe() -> None:
    """Manage background proxy probing."""


@proxy_probe.command("start")
@click.pass_context
def proxy_probe_start(ctx: click.Context) -> None:
    """Start probing for proxies."""
    _no_content(ctx, "GET", "/admin/proxy/probe")


@proxy_probe.command("stop")
@click.pass_context
def proxy_probe_stop(ctx: click.Context) -> None:
    """Stop probing for proxies."""
    _no_content(ctx, "DELETE", "/admin/proxy/probe")
