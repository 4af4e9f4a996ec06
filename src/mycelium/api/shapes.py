"""The reference's JSON shapes (api.yaml, openrpc.json) of the typed values the cores return.

The cores (router, peer manager, message engine, packet statistics) know nothing of JSON or of
camelCase; REST and JSON-RPC both answer with what these functions build.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

from ..dataplane.packet_stats import AddressCount
from ..links.endpoint import Endpoint
from ..links.peer_manager import PeerEntry
from ..messages.engine import MessageStatus, ReceivedMessage, State
from ..routing import RouteView
from ..wire.tlv import INFINITY


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ip_text(address: bytes) -> str:
    return str(ipaddress.IPv6Address(address))


def endpoint_json(endpoint: Endpoint) -> dict[str, Any]:
    """``{"proto": "tcp", "addr": {"socket": "[::1]:9651"}}``, the reference's shape since 0.7.6."""
    if endpoint.proto == "vsock":
        return {
            "proto": "vsock",
            "addr": {"vsock": {"cid": int(endpoint.host), "port": endpoint.port}},
        }
    return {"proto": endpoint.proto, "addr": {"socket": endpoint.socket_address}}


def peer_json(entry: PeerEntry, now: float) -> dict[str, Any]:
    return {
        "endpoint": endpoint_json(entry.endpoint),
        "type": entry.kind.value,
        "connectionState": entry.state.value,
        "txBytes": entry.tx_bytes,
        "rxBytes": entry.rx_bytes,
        "discovered": int(now - entry.discovered_at),
        "lastConnected": None if entry.last_connected is None else int(now - entry.last_connected),
    }


def route_json(view: RouteView) -> dict[str, Any]:
    return {
        "subnet": str(view.subnet),
        "nextHop": getattr(view.neighbour, "connection_id", str(view.neighbour)),
        "metric": "infinite" if view.metric == INFINITY else view.metric,
        "seqno": view.seqno,
    }


def received_json(m: ReceivedMessage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": m.id.hex(),
        "srcIp": ip_text(m.src_ip),
        "srcPk": m.src_pk.hex(),
        "dstIp": ip_text(m.dst_ip),
        "dstPk": m.dst_pk.hex(),
    }
    if m.topic:
        body["topic"] = b64(m.topic)
    body["payload"] = b64(m.data)
    return body


def message_info_json(status: MessageStatus) -> dict[str, Any]:
    """MessageInfo: the state is a string, or ``{"sending": {pending, sent, acked}}``."""
    state: Any = status.state.value
    if status.state is State.IN_PROGRESS and status.progress is not None:
        p = status.progress
        state = {"sending": {"pending": p.pending, "sent": p.sent, "acked": p.acked}}
    return {
        "dst": ip_text(status.dst),
        "state": state,
        "created": int(status.created),
        "deadline": int(status.deadline),
        "msgLen": status.length,
    }


def packet_stats_json(
    by_source: list[AddressCount], by_destination: list[AddressCount]
) -> dict[str, Any]:
    def entries(counts: list[AddressCount]) -> list[dict[str, Any]]:
        return [
            {"ip": ip_text(c.address), "packetCount": c.packets, "byteCount": c.byte_count}
            for c in counts
        ]

    return {"bySource": entries(by_source), "byDestination": entries(by_destination)}
