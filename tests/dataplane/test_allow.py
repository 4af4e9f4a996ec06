"""``--allow-from``: its rules, and the data plane dropping what they refuse (docs/wire.md §5.3)."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dp_fakes import identity, ipv6_packet, make_plane, take_frames
from mycelium.allow import AllowList, parse_rule
from mycelium.api.metrics import NodeCollector
from mycelium.crypto import SharedKey, shared_secret
from mycelium.identity import node_subnet
from mycelium.subnet import Subnet
from mycelium.wire.packet import DataPacket

A, B, C = identity("node a"), identity("node b"), identity("node c")


def sealed(src_id, dst_id, kind: int = 0, payload: bytes = b"p" * 30) -> DataPacket:  # type: ignore[no-untyped-def]
    """A packet from src_id to dst_id (L3 or, kind 1, a message) as its origin sends it."""
    inner = ipv6_packet(src_id.address, dst_id.address, payload=payload) if kind == 0 else payload
    key = SharedKey(shared_secret(src_id.secret, dst_id.public_key))
    return DataPacket(src_id.address, dst_id.address, 10, key.seal(bytes((1, kind, 0, 0)) + inner))


def test_rules_name_a_node_or_a_subnet() -> None:
    assert parse_rule(A.public_key.hex()) == node_subnet(A.public_key)
    assert parse_rule(A.address_text) == A.subnet  # an address stands for its node's /64
    assert parse_rule(" 400::/8 ") == Subnet.parse("400::/8")
    for bad, reason in (
        ("ab" * 31, "neither"),
        ("10.0.0.1", "neither"),
        ("2001:db8::1", "outside the overlay"),
        ("::/0", "outside the overlay"),
        ("zz" * 32, "hexadecimal"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_rule(bad)


@given(st.text(max_size=80))
def test_rule_parser_raises_only_value_errors(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_rule(text)


def test_allow_list_matches_64s_and_other_lengths() -> None:
    allow = AllowList([A.subnet, Subnet.parse("5c0::/12")], own=B.subnet)
    assert allow.allows(A.address) and allow.allows(A.address[:8] + b"\xff" * 8)
    assert allow.allows(B.address)  # our own /64 always
    assert allow.allows(bytes.fromhex("05c7") + bytes(14))
    assert not allow.allows(C.address)
    assert allow.dropped == 1


def test_the_plane_drops_l3_and_messages_from_sources_not_allowed() -> None:
    plane, router = make_plane(B)
    router.add(A, "na")
    router.add(C, "nc")
    plane.allow = AllowList([A.subnet], own=B.subnet)
    plane.from_link([sealed(C, B), sealed(C, B), sealed(A, B)], now=0.0)
    plane.from_link([sealed(C, B, kind=1, payload=b"msg"), sealed(A, B, kind=1)], now=0.0)
    assert [p[8:24] for p in plane.take_to_tun()] == [A.address]
    assert [src for src, _, _ in plane.take_messages()] == [A.address]
    assert plane.allow.dropped == 3
    families = {f.name: f for f in NodeCollector(SimpleNamespace(dataplane=plane))._data_plane()}  # type: ignore[arg-type]
    assert families["pymycelium_packets_not_allowed"].samples[0].value == 3
    # Nothing about the refused sender reached the router: no route request, no parked packet.
    router.remove(C)
    plane.from_link([sealed(C, B)], now=0.0)
    assert router.requests == [] and len(plane.incoming_queue) == 0


def test_without_rules_nothing_is_checked() -> None:
    plane, router = make_plane(B)
    router.add(C, "nc")
    assert plane.allow is None
    plane.from_link([sealed(C, B)], now=0.0)
    assert len(plane.take_to_tun()) == 1


def test_forwarding_for_others_is_not_filtered() -> None:
    plane, router = make_plane(C)
    router.add(B, "nb")
    plane.allow = AllowList([], own=C.subnet)  # nobody else may reach C itself
    plane.from_link([sealed(A, B)], now=0.0)
    assert [n for n, _ in take_frames(plane)] == ["nb"]
    assert plane.allow.dropped == 0
