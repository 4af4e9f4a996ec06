"""``mycelium status``: one screen about the running node (like ``tailscale status`` or
``yggdrasilctl getSelf``), from our status document, or from the admin API of a reference node."""

from __future__ import annotations

import time
from typing import Any

import click

from .client import ApiClient, client_for, echo_json, json_flag
from .table import format_bytes, format_seconds, render


def _from_admin_api(client: ApiClient) -> dict[str, Any]:
    """The same document from the reference's admin endpoints (what they cannot tell is left
    out)."""
    info, _ = client.get_json("/admin")
    peers, _ = client.get_json("/admin/peers")
    selected, _ = client.get_json("/admin/routes/selected")
    fallback, _ = client.get_json("/admin/routes/fallback")
    queried, _ = client.get_json("/admin/routes/queried")
    rows = []
    for p in peers:
        addr = p["endpoint"]["addr"]
        socket = addr.get("socket") or "{cid}:{port}".format(**addr.get("vsock", {}))
        alive = p["connectionState"] == "alive"
        rows.append(
            {
                "endpoint": f"{p['endpoint']['proto']}://{socket}",
                "type": p["type"],
                "state": p["connectionState"],
                "connectedFor": p.get("lastConnected") if alive else None,
                "txBytes": p["txBytes"],
                "rxBytes": p["rxBytes"],
            }
        )
    alive_count = sum(r["state"] == "alive" for r in rows)
    return {
        "address": info["nodeIp"],
        "subnet": info["nodeSubnet"],
        "publicKey": info["nodePubkey"],
        "uptime": max(0, int(time.time()) - int(info["nodeStartTime"])),
        "peers": rows,
        "peersAlive": alive_count,
        "routes": {"selected": len(selected), "fallback": len(fallback), "queried": len(queried)},
        "warnings": [] if alive_count else ["no peer is connected: this node reaches no one"],
    }


def _listening(status: dict[str, Any]) -> str:
    listen = status.get("listen")
    if listen is None:
        return "?"
    stream = "tls" if status.get("privateNetwork") else "tcp"
    parts = [f"{stream} {listen['tcp']}"]
    for name, port in (
        ("quic", listen.get("quic")),
        ("vsock", status.get("vsockPort")),
        ("discovery", status.get("discoveryPort")),
    ):
        if port is not None:
            parts.append(f"{name} {port}")
    return ", ".join(parts)


def _tun(status: dict[str, Any]) -> str:
    tun = status.get("tun")
    if tun is None:
        return "?"
    if tun["enabled"]:
        return str(tun["name"])
    return "none (--no-tun)" if tun["name"] is None else f"{tun['name']} (not created)"


def _nat(nat: dict[str, Any]) -> str:
    if not nat["enabled"]:
        return "off (--disable-hole-punching, or no QUIC)"
    if not nat["stunServers"]:
        return "mapping unknown (no --stun-server)"
    public = ", ".join(nat["publicAddresses"]) or "not known yet"
    links = nat["directLinks"]
    return f"{nat['natType']}, public {public}, {links} direct link{'s' * (links != 1)}"


def _peer_row(p: dict[str, Any]) -> list[object]:
    cost, rtt = p.get("linkCost"), p.get("rttMs")
    if p["state"] == "alive":
        connected = p.get("connectedFor")
        note = "up " + format_seconds(connected) if connected is not None else "up"
    else:
        note = p.get("lastError") or ""
    return [
        p["endpoint"] + (f" ({p['address']})" if p.get("address") else ""),
        p["type"],
        p["state"],
        "-" if cost is None else cost,
        "-" if rtt is None else f"{rtt} ms",
        f"{format_bytes(p['rxBytes'])} / {format_bytes(p['txBytes'])}",
        note,
    ]


def render_status(status: dict[str, Any]) -> str:
    version = status.get("version")
    allow = status.get("allowFrom")
    routes = status["routes"]
    lines = [
        f"Address:     {status['address']}",
        f"Subnet:      {status['subnet']}",
        f"Public key:  {status['publicKey']}",
        "Version:     "
        + (
            f"pymycelium {version} (mycelium {status['referenceVersion']} protocol)"
            if version
            else "? (not a pymycelium node)"
        ),
        f"Uptime:      {format_seconds(int(status['uptime']))}",
        f"TUN:         {_tun(status)}",
        f"Listening:   {_listening(status)}",
        f"Routes:      {routes['selected']} selected, {routes['fallback']} fallback, "
        f"{routes['queried']} queried",
    ]
    if "nat" in status:
        lines.append(f"NAT:         {_nat(status['nat'])}")
    if status.get("privateNetwork"):
        lines.append(f"Network:     {status['privateNetwork']} (private)")
    if allow is not None:
        lines.append(
            f"Allow from:  {', '.join(allow)} ({status.get('notAllowed', 0)} packets refused)"
        )
    peers = status["peers"]
    lines.append(f"Peers:       {status['peersAlive']} of {len(peers)} alive")
    if peers:
        header: list[object] = [
            "Endpoint",
            "Type",
            "State",
            "Link cost",
            "RTT",
            "Rx / Tx",
            "Up / error",
        ]
        lines.append(render([header, *(_peer_row(p) for p in peers)]))
    lines += [f"Warning: {warning}" for warning in status["warnings"]]
    return "\n".join(lines)


@click.command("status")
@json_flag
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """Show the running node: address, key, uptime, TUN, listeners, peers (with link cost and
    round trip), routes, and what needs attention."""
    client = client_for(ctx)
    status = client.get_status() or _from_admin_api(client)
    if as_json:
        echo_json(status)
    else:
        click.echo(render_status(status))
