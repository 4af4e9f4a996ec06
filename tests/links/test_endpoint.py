"""Endpoint syntax exactly as the reference accepts it (docs/wire.md §6.1, §13 item 20)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mycelium.links.endpoint import Endpoint, EndpointError


@pytest.mark.parametrize(
    ("text", "proto", "host", "port", "shown"),
    [
        ("tcp://1.2.3.4:9651", "tcp", "1.2.3.4", 9651, "tcp://1.2.3.4:9651"),
        ("TCP://[2001:db8::1]:9651", "tcp", "2001:db8::1", 9651, "tcp://[2001:db8::1]:9651"),
        ("quic://[2a01:4f8:212:fa6::2]:9651", "quic", "2a01:4f8:212:fa6::2", 9651, None),
        ("tls://[fe80::1%3]:9651", "tls", "fe80::1%3", 9651, "tls://[fe80::1%3]:9651"),
        ("vsock://2:9651", "vsock", "2", 9651, "vsock://2:9651"),
        ("tcp://[2001:0db8:0::1]:1", "tcp", "2001:db8::1", 1, "tcp://[2001:db8::1]:1"),
    ],
)
def test_valid_endpoints(text: str, proto: str, host: str, port: int, shown: str | None) -> None:
    endpoint = Endpoint.parse(text)
    assert (endpoint.proto, endpoint.host, endpoint.port) == (proto, host, port)
    assert str(endpoint) == (shown or text)
    assert Endpoint.parse(str(endpoint)) == endpoint


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4:9651",  # no protocol
        "udp://1.2.3.4:9651",  # unknown protocol
        "tcp://example.com:9651",  # host names are refused
        "tcp://1.2.3.4",  # port is mandatory
        "tcp://[2001:db8::1]",  # port is mandatory
        "tcp://[fe80::1%eth0]:9651",  # scope must be numeric
        "tcp://1.2.3.4:0",
        "tcp://1.2.3.4:65536",
        "tcp://[2001:db8::1:9651",
        "vsock://x:1",
        "vsock://1",
    ],
)
def test_refused_endpoints(text: str) -> None:
    with pytest.raises(EndpointError):
        Endpoint.parse(text)


def test_ipv4_detection_for_link_cost() -> None:
    assert Endpoint.parse("tcp://1.2.3.4:1").is_ipv4
    assert Endpoint.parse("tcp://[::ffff:1.2.3.4]:1").is_ipv4
    assert not Endpoint.parse("tcp://[2001:db8::1]:1").is_ipv4


@given(st.text(max_size=60))
def test_parser_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(EndpointError):
        Endpoint.parse(text)
