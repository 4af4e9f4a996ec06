"""REST, JSON-RPC and metrics of a live in-process node, checked against the reference's own
OpenAPI and OpenRPC documents (unedited copies ship in src/mycelium/api/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from prometheus_client.parser import text_string_to_metric_families

import mycelium.api
from api_pair import Pair
from mycelium.api.jsonrpc import openrpc_document
from mycelium.identity import node_subnet

#: The reference's document, unedited, as the package ships it.
OPENAPI = Path(mycelium.api.__file__).parent / "api.yaml"


def openapi() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text())


def check(schema_name: str, value: Any, many: bool = False) -> None:
    doc = openapi()
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    schema = {"type": "array", "items": ref} if many else ref
    jsonschema.validate(value, {**schema, "components": doc["components"]})


async def test_admin_info_and_routes(pair: Pair) -> None:
    status, info = await pair.rest("GET", "/admin")
    assert status == 200
    check("Info", info)
    assert info["nodePubkey"] == pair.a.identity.public_key.hex()
    assert info["nodeIp"] == pair.a.identity.address_text
    assert info["nodeSubnet"] == str(node_subnet(pair.a.identity.public_key))

    status, routes = await pair.rest("GET", "/admin/routes/selected")
    assert status == 200
    check("Route", routes, many=True)
    b_subnet = str(node_subnet(pair.b.identity.public_key))
    (route,) = [r for r in routes if r["subnet"] == b_subnet]
    assert route["metric"] == 0 and route["nextHop"].startswith("TCP [::1]:")
    for path in ("/admin/routes/fallback", "/admin/routes/queried"):
        status, listed = await pair.rest("GET", path)
        assert status == 200 and isinstance(listed, list)
    status, stats = await pair.rest("GET", "/admin/stats/packets")
    assert status == 200
    check("PacketStatistics", stats)


async def test_pubkey_lookup(pair: Pair) -> None:
    status, body = await pair.rest("GET", f"/pubkey/{pair.b.identity.address_text}")
    assert status == 200
    assert body == {"publicKey": pair.b.identity.public_key.hex()}
    status, _ = await pair.rest("GET", "/pubkey/5ff:1:2:3::1")
    assert status == 404
    status, _ = await pair.rest("GET", "/pubkey/not-an-ip")
    assert status == 400


async def test_peers_list_add_remove(pair: Pair) -> None:
    status, peers = await pair.rest("GET", "/admin/peers")
    assert status == 200
    check("PeerStats", peers, many=True)
    (inbound,) = peers
    assert inbound["type"] == "inbound" and inbound["connectionState"] == "alive"
    assert inbound["endpoint"]["proto"] == "tcp"
    assert inbound["endpoint"]["addr"]["socket"].startswith("[::1]:")
    assert inbound["rxBytes"] > 0 and inbound["txBytes"] > 0

    new = "tcp://[2001:db8::1]:9651"
    status, _ = await pair.rest("POST", "/admin/peers", json={"endpoint": new})
    assert status == 204
    status, text = await pair.rest("POST", "/admin/peers", json={"endpoint": new})
    assert status == 409 and "already exists" in text
    status, text = await pair.rest("POST", "/admin/peers", json={"endpoint": "nonsense"})
    assert status == 400
    json_type = {"Content-Type": "application/json"}
    status, _ = await pair.rest("POST", "/admin/peers", data=b"{not json", headers=json_type)
    assert status == 400
    status, _ = await pair.rest("POST", "/admin/peers", data=b'{"endpoint": "x"}')
    assert status == 415
    for shape in ({"endpoint": 5}, ["tcp://[::1]:1"], {}):
        status, _ = await pair.rest("POST", "/admin/peers", json=shape)
        assert status == 422, shape
    status, peers = await pair.rest("GET", "/admin/peers")
    assert {p["type"] for p in peers} == {"inbound", "static"}

    status, _ = await pair.rest("DELETE", "/admin/peers/tcp:%2F%2F%5B2001:db8::1%5D:9651")
    assert status == 204
    status, _ = await pair.rest("DELETE", "/admin/peers/tcp:%2F%2F%5B2001:db8::1%5D:9651")
    assert status == 404
    status, _ = await pair.rest("DELETE", "/admin/peers/garbage")
    assert status == 400


async def test_proxy_endpoints(pair: Pair) -> None:
    # The prober knocks on the key-derived address of every selected route's origin.
    assert pair.a.proxy._targets() == [pair.b.identity.address_text]
    assert await pair.rest("GET", "/admin/proxy") == (200, [])
    # Nothing discovered: connecting without a remote finds no proxy (404, empty body).
    for body in ({}, {"remote": None}, {"other": 1}):
        assert await pair.rest("POST", "/admin/proxy", json=body) == (404, "")
    # A given overlay remote is taken as is, without probing (docs/extras.md §1.6 item 6).
    for remote, shown in (("[407::1]:9999", "[407::1]:9999"), ("[5ff:0::2]:1080", "[5ff::2]:1080")):
        assert await pair.rest("POST", "/admin/proxy", json={"remote": remote}) == (200, shown)
    # Anything else is refused: the listener would relay strangers to it (docs/api-security.md).
    rest_port = pair.servers.addresses["REST"][1]
    for remote in (
        "10.1.2.3:1080",
        "127.0.0.1:8990",
        f"[::1]:{rest_port}",
        "[::ffff:127.0.0.1]:22",
    ):
        status, text = await pair.rest("POST", "/admin/proxy", json={"remote": remote})
        assert status == 403 and "overlay" in text, remote
        assert pair.a.proxy.target == "[5ff::2]:1080"
    for remote in ("407::1", "[407::1]:99999", 5, "host:80"):
        assert (await pair.rest("POST", "/admin/proxy", json={"remote": remote}))[0] == 422
    assert (await pair.rest("POST", "/admin/proxy", json=[]))[0] == 422
    assert (await pair.rest("POST", "/admin/proxy", data=b"{}"))[0] == 415
    as_json = {"Content-Type": "application/json"}
    for raw, status in ((b"null", 422), (b"{", 400), (b"", 400)):
        assert (await pair.rest("POST", "/admin/proxy", data=raw, headers=as_json))[0] == status
    assert await pair.rest("DELETE", "/admin/proxy") == (204, "")
    assert pair.a.proxy.target is None
    assert await pair.rest("GET", "/admin/proxy/probe") == (204, "")
    assert pair.a.proxy.probing
    assert await pair.rest("DELETE", "/admin/proxy/probe") == (204, "")
    assert not pair.a.proxy.probing


def rpc_result_schema(method: str) -> dict[str, Any]:
    doc = openrpc_document()
    (spec,) = [m for m in doc["methods"] if m["name"] == method]
    return {**spec["result"]["schema"], "components": doc.get("components", {})}


async def test_jsonrpc_methods_match_the_openrpc_document(pair: Pair) -> None:
    for method in (
        "getInfo",
        "getPeers",
        "getSelectedRoutes",
        "getFallbackRoutes",
        "getQueriedSubnets",
        "getPacketStatistics",
    ):
        reply = await pair.rpc(method)
        assert "result" in reply, reply
        jsonschema.validate(reply["result"], rpc_result_schema(method))
    key = await pair.rpc("getPublicKeyFromIp", [pair.b.identity.address_text])
    assert key["result"] == pair.b.identity.public_key.hex()
    assert (await pair.rpc("getPublicKeyFromIp", ["bad"]))["error"]["code"] == -32007
    assert (await pair.rpc("getPublicKeyFromIp", ["5ff::1"]))["error"]["code"] == -32008
    assert (await pair.rpc("addPeer", ["tcp://[2001:db8::2]:9651"]))["result"] is True
    assert (await pair.rpc("addPeer", ["tcp://[2001:db8::2]:9651"]))["error"]["code"] == -32010
    assert (await pair.rpc("addPeer", ["bogus"]))["error"]["code"] == -32009
    assert (await pair.rpc("deletePeer", {"endpoint": "tcp://[2001:db8::2]:9651"}))["result"]
    assert (await pair.rpc("deletePeer", ["tcp://[2001:db8::2]:9651"]))["error"]["code"] == -32011
    assert (await pair.rpc("noSuchMethod"))["error"]["code"] == -32601
    discover = await pair.rpc("rpc.discover")
    assert discover["result"]["openrpc"] == openrpc_document()["openrpc"]


async def test_jsonrpc_protocol_errors_and_batches(pair: Pair) -> None:
    url = pair.url("JSON-RPC", "/")
    as_json = {"Content-Type": "application/json"}
    async with pair.http.post(url, data=b"{oops", headers=as_json) as r:
        assert r.status == 200 and (await r.json())["error"]["code"] == -32700
    async with pair.http.post(url, data=b"oops", headers=as_json) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == -32700
    async with pair.http.post(url, data=b'{"jsonrpc": "2.0", "id": 1, "method": "getInfo"}') as r:
        assert r.status == 415
    async with pair.http.post(url, json={"id": 1}) as r:
        assert (await r.json())["error"]["code"] == -32600
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "getInfo"},
        {"jsonrpc": "2.0", "method": "getPeers"},
    ]
    async with pair.http.post(url, json=batch) as r:
        replies = await r.json()
    assert [x["id"] for x in replies] == [1]


#: Every metric of the reference (mycelium-metrics/src/prometheus.rs): type and label values.
REFERENCE_METRICS: dict[str, tuple[str, str | None, set[str]]] = {
    "mycelium_router_processed_tlvs": (
        "counter",
        "tlv_type",
        {"hello", "ihu", "update", "route_request", "wildcard_route_request", "seqno_request"},
    ),
    "mycelium_router_peer_added": ("counter", None, set()),
    "mycelium_router_peer_removed": ("counter", None, set()),
    "mycelium_router_peer_died": ("counter", None, set()),
    "mycelium_router_route_selections": ("counter", None, set()),
    "mycelium_router_source_key_expired": ("counter", None, set()),
    "mycelium_router_expired_routes": ("counter", "action", {"removed", "retracted"}),
    "mycelium_router_selected_route_expired": ("counter", None, set()),
    "mycelium_router_triggered_updates": ("counter", None, set()),
    "mycelium_router_packets_routed": (
        "counter",
        "verdict",
        {"local", "forward", "ttl_expired", "no_route"},
    ),
    "mycelium_router_seqno_handling": (
        "counter",
        "action",
        {
            "reply_local",
            "bump_seqno",
            "ttl_expired",
            "forward_feasible",
            "forward_unfeasible",
            "unhandled",
        },
    ),
    "mycelium_router_tlv_handling_time": (
        "counter",
        "tlv_type",
        {"hello", "ihu", "update", "route_request", "seqno"},
    ),
    "mycelium_router_update_dead_peer": ("counter", None, set()),
    "mycelium_router_received_tlvs": ("counter", None, set()),
    "mycelium_router_tlv_source_died": ("counter", None, set()),
    "mycelium_router_tlv_discarded": ("counter", None, set()),
    "mycelium_router_propagate_selected_route_time": ("counter", None, set()),
    "mycelium_router_update_skipped_route_selection": ("counter", None, set()),
    "mycelium_router_update_denied": ("counter", None, set()),
    "mycelium_router_update_not_interested": ("counter", None, set()),
    "mycelium_peer_manager_peers_added": (
        "counter",
        "peer_type",
        {"static", "inbound", "link_local"},
    ),
    "mycelium_peer_manager_known_peers": ("gauge", None, set()),
    "mycelium_peer_manager_connection_attempts": (
        "counter",
        "connection_state",
        {"started", "finished"},
    ),
    "mycelium_router_outbound_packet_queue": (
        "counter",
        "event",
        {"enqueued", "dequeued", "dropped_query_timeout", "queue_full_global", "queue_full_subnet"},
    ),
    "mycelium_router_incoming_packet_queue": (
        "counter",
        "event",
        {"enqueued", "dequeued", "dropped_query_timeout", "queue_full_global", "queue_full_subnet"},
    ),
}


async def test_metrics_scrape_has_every_reference_metric(pair: Pair) -> None:
    # One message each way through the data planes (b answers with acknowledgements).
    assert pair.b.messages is not None
    await pair.rest(
        "POST", "/messages", json={"dst": {"ip": pair.b.identity.address_text}, "payload": "eA=="}
    )
    assert await pair.b.messages.pop(timeout=5) is not None
    async with pair.http.get(pair.url("metrics", "/metrics")) as r:
        text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, (kind, label, values) in REFERENCE_METRICS.items():
        family = families[name]
        assert family.type == kind, name
        # Bare counter names, as the reference's Rust exporter writes them (no "_total").
        assert f"\n# TYPE {name} {kind}\n" in text
        assert any(
            line.startswith(name + (" " if label is None else "{")) for line in text.splitlines()
        ), name
        if label is None:
            assert [s.labels for s in family.samples] == [{}], name
        else:
            assert {s.labels[label] for s in family.samples} == values, name
    assert "_total" not in text

    def value(name: str, **labels: str) -> float:
        (sample,) = [s for s in families[name].samples if s.labels == labels]
        return sample.value

    # The live pair has exchanged Hellos, IHUs and Updates over one static TCP link.
    assert value("mycelium_router_processed_tlvs", tlv_type="update") >= 1
    assert value("mycelium_router_tlv_handling_time", tlv_type="update") > 0
    assert value("mycelium_router_peer_added") == 1
    assert value("mycelium_router_triggered_updates") >= 1  # b's route was acquired
    # Our own packets are forwarded by the router step like transit ones; b's are local.
    assert value("mycelium_router_packets_routed", verdict="forward") >= 1
    assert value("mycelium_router_packets_routed", verdict="local") >= 1
    assert value("pymycelium_packet_statistics_evicted") == 0
    assert value("mycelium_peer_manager_known_peers") == 1
    assert value("mycelium_router_received_tlvs") >= value(
        "mycelium_router_processed_tlvs", tlv_type="update"
    )
    # Only inbound and discovered peers count as added (b dialled a); a dials no one.
    added = {
        s.labels["peer_type"]: s.value
        for s in families["mycelium_peer_manager_peers_added"].samples
    }
    assert added == {"static": 0, "inbound": 1, "link_local": 0}
    attempts = {
        s.labels["connection_state"]: s.value
        for s in families["mycelium_peer_manager_connection_attempts"].samples
    }
    assert attempts == {"started": 0, "finished": 0}
    by_state = {
        s.labels["connection_state"]: s.value
        for s in families["pymycelium_peer_manager_peers_by_state"].samples
    }
    assert by_state["alive"] == 1
    # Our own families: the router's limits (none reached) and the message bus's events.
    limited = {s.labels["limit"]: s.value for s in families["pymycelium_router_limited"].samples}
    assert set(limited) == {
        "table_full", "routes_per_peer", "ihu_rate", "route_request_rate",
        "seqno_request_rate", "origin_request_rate", "dump_rate",
    }  # fmt: skip
    assert set(limited.values()) == {0}
    assert value("pymycelium_messages", event="sent") == 1
    assert value("pymycelium_link_backlog", event="dropped_data") == 0
    assert value("pymycelium_inbound_refused", listener="stream", limit="per_source") == 0
    assert value("pymycelium_quic_initials", event="retry_sent") == 0
    assert value("pymycelium_replayed_packets") == 0
    assert value("pymycelium_icmp_rate_limited") == 0


async def test_jsonrpc_proxy_methods(pair: Pair) -> None:
    assert (await pair.rpc("getProxies"))["result"] == []
    for params in ([None], [], {}, {"remote": None}):
        failed = (await pair.rpc("connectProxy", params))["error"]
        assert (failed["code"], failed["message"]) == (-32032, "Server error"), params
    assert (await pair.rpc("connectProxy", ["[407::1]:9999"]))["result"] == "[407::1]:9999"
    assert (await pair.rpc("connectProxy", {"remote": "[5ff::1]:80"}))["result"] == "[5ff::1]:80"
    for outside in ("10.0.0.1:80", "127.0.0.1:8990", "[::1]:8989"):
        refused = (await pair.rpc("connectProxy", [outside]))["error"]
        assert refused["code"] == -32032 and "overlay" in refused["data"], outside
    assert pair.a.proxy.target == "[5ff::1]:80"
    for bad in (["407::1"], [5], {"remote": "host:80"}):
        assert (await pair.rpc("connectProxy", bad))["error"]["code"] == -32602, bad
    assert (await pair.rpc("disconnectProxy"))["result"] is True
    assert pair.a.proxy.target is None
    assert (await pair.rpc("startProxyProbe"))["result"] is True
    assert pair.a.proxy.probing
    assert (await pair.rpc("stopProxyProbe"))["result"] is True
    assert not pair.a.proxy.probing
