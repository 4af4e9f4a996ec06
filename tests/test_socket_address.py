"""The one socket-address parser (endpoints, API listen addresses, proxy targets, the CLI) and
the proxy target rule."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mycelium.proxy import ProxyTargetRefused, check_target
from mycelium.socket_address import lookup_host, parse_socket_address, socket_text


def test_parses_as_rust_socket_addr() -> None:
    assert parse_socket_address("[407::1]:1080") == ("407::1", 1080)
    assert parse_socket_address("10.0.0.1:80") == ("10.0.0.1", 80)
    assert parse_socket_address("127.0.0.1:0") == ("127.0.0.1", 0)
    # Rust keeps an IPv4-mapped tail dotted, takes numeric scopes only and drops scope 0.
    assert parse_socket_address("[::ffff:1.2.3.4]:80") == ("::ffff:1.2.3.4", 80)
    assert parse_socket_address("[fe80::1%3]:080") == ("fe80::1%3", 80)
    assert parse_socket_address("[fe80::1%0]:80") == ("fe80::1", 80)
    assert parse_socket_address("[2001:0db8:0::1]:1") == ("2001:db8::1", 1)


@pytest.mark.parametrize(
    "bad",
    [
        "407::1",
        "[407::1]:70000",
        "host:80",
        "localhost:8989",
        "1.2.3.4",
        "[1.2.3.4]:5",
        "::1:5",
        "[fe80::1%eth0]:80",
        "[::1%]:80",
        "[::1]:\uff18",
        "[::1]:-1",
        "",
        None,
        5,
        ["x"],
    ],
)
def test_refuses_what_rust_refuses(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_socket_address(bad)


def test_host_names_are_named_in_the_reason() -> None:
    with pytest.raises(ValueError, match="host names are not accepted"):
        parse_socket_address("example.com:1")


def test_prints_as_rust_does() -> None:
    assert socket_text("407::1", 1080) == "[407::1]:1080"
    assert socket_text("10.0.0.1", 80) == "10.0.0.1:80"
    assert socket_text("fe80::1%3", 9) == "[fe80::1%3]:9"


@given(st.text(max_size=40))
def test_never_raises_anything_but_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        host, port = parse_socket_address(text)
        assert parse_socket_address(socket_text(host, port)) == (host, port)


@pytest.mark.parametrize("host", ["407::1", "5ff:ffff::1", "4a1:2:3::9"])
def test_overlay_targets_are_allowed(host: str) -> None:
    check_target(host)


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "::1", "::", "0.0.0.0", "10.1.2.3", "::ffff:127.0.0.1", "fe80::1%2", "2001::1"],
)
def test_targets_outside_the_overlay_are_refused(host: str) -> None:
    with pytest.raises(ProxyTargetRefused, match="overlay"):
        check_target(host)


def test_hosts_are_looked_up_as_bytes_unless_only_idna_can_encode_them() -> None:
    assert lookup_host("127.0.0.1") == b"127.0.0.1" and lookup_host("::") == b"::"
    assert lookup_host("stun.example.org") == b"stun.example.org"
    assert lookup_host("bücher.example") == "bücher.example"  # getaddrinfo's IDNA encodes it
