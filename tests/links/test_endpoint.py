"""Endpoint syntax as the reference accepts it, plus host names (docs/wire.md §6.1, §13 item 20)."""

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
        # Host names (our extension; resolved before every connection attempt).
        ("tcp://Example.ORG:9651", "tcp", "example.org", 9651, "tcp://example.org:9651"),
        (
            "quic://node-1.example.org.:9651",
            "quic",
            "node-1.example.org",
            9651,
            "quic://node-1.example.org:9651",
        ),
        ("tls://localhost:1", "tls", "localhost", 1, None),
    ],
)
def test_valid_endpoints(text: str, proto: str, host: str, port: int, shown: str | None) -> None:
    endpoint = Endpoint.parse(text)
    assert (endpoint.proto, endpoint.host, endpoint.port) == (proto, host, port)
    assert str(endpoint) == (shown or text)
    assert Endpoint.parse(str(endpoint)) == endpoint
    assert endpoint.is_hostname == (host[0].isalpha() and ":" not in host)


@pytest.mark.parametrize(
    "text",
    [
        "1.2.3.4:9651",  # no protocol
        "udp://1.2.3.4:9651",  # unknown protocol
        "tcp://-bad.example:9651",  # not a host name
        "tcp://bad_name.example:9651",
        "tcp://1.2.3:9651",  # a mistyped IPv4 address is not a host name
        "tcp://300.1.1.1:9651",
        "tcp://2001:db8::1:9651",  # IPv6 needs brackets
        "tcp://" + "a" * 64 + ".example:9651",
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


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("10.0.0.2:9651", "did you mean tcp://10.0.0.2:9651?"),
        ("tcp://2001:db8::1:9651", "IPv6 address without brackets"),
        ("tcp://example.org", "has no port"),
    ],
)
def test_refusals_say_what_to_write(text: str, hint: str) -> None:
    with pytest.raises(EndpointError, match=hint):
        Endpoint.parse(text)


def test_ipv4_detection_for_link_cost() -> None:
    assert Endpoint.parse("tcp://1.2.3.4:1").is_ipv4
    assert Endpoint.parse("tcp://[::ffff:1.2.3.4]:1").is_ipv4
    assert not Endpoint.parse("tcp://[2001:db8::1]:1").is_ipv4
    assert not Endpoint.parse("tcp://example.org:1").is_ipv4


@given(st.text(max_size=60))
def test_parser_never_raises_anything_else(text: str) -> None:
    with contextlib.suppress(EndpointError):
        Endpoint.parse(text)
