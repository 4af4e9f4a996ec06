"""The settings model and the TOML config file: values, defaults, errors (config_example.toml)."""

from __future__ import annotations

import ipaddress
import marshal
import tomllib
from pathlib import Path

import pytest

from mycelium.links.endpoint import Endpoint
from mycelium.settings import (
    FIELDS,
    SettingsError,
    default_config_path,
    from_plain,
    load_file,
    merge,
    to_plain,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "config_example.toml"
#: An unedited copy of the reference's example, for machines without the shared folder.
EXAMPLE = SHARED if SHARED.exists() else Path(__file__).parent / "data" / "config_example.toml"


def test_reference_example_file_loads(tmp_path: Path) -> None:
    values, warnings, _ = load_file(EXAMPLE)
    assert warnings == []
    assert values["tcp_listen_port"] == 9651
    assert values["tun_name"] == "mycelium"
    assert len(values["peers"]) == 6


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_file(tmp_path / "nope.toml")


def test_missing_default_file_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_config_path() == tmp_path / "mycelium" / "mycelium.toml"
    assert load_file(None) == ({}, [], None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("peers = [", "not valid TOML"),
        ("tcp_listen_port = 'x'", "must be of type integer"),
        ("tcp_listen_port = 70000", "not a port"),
        ("no_tun = 1", "must be of type boolean"),
        ("peers = [1, 2]", "list of strings"),
        ("firewall_mark = true", "must be of type integer"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_file(path)


def test_unknown_key_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("tun_name = 'x'\nbogus = 1\n")
    values, warnings, _ = load_file(path)
    assert values == {"tun_name": "x"}
    assert len(warnings) == 1 and "bogus" in warnings[0]


def test_unreachable_default_file_is_a_warning_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mycelium.settings as config

    def denied(self: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(config.Path, "exists", denied)
    values, warnings, _ = load_file(None)
    assert values == {} and "not readable" in warnings[0]
    with pytest.raises(SettingsError, match="Permission denied"):
        load_file(tmp_path / "explicit.toml")


def test_values_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'peers = "tcp://[2001:db8::1]:9651"\n'  # one string is a list of one, as the reference
        'dns_upstream = ["400::1"]\ntopic_config = "topics.toml"\nfirewall_mark = 7\n'
    )
    values, _, read = load_file(path)
    assert read == path
    settings = merge({}, values)
    assert settings.peers == (Endpoint("tcp", "2001:db8::1", 9651),)
    assert settings.dns_upstream == (ipaddress.IPv6Address("400::1"),)
    assert settings.topic_config == Path("topics.toml")
    assert settings.firewall_mark == 7 and settings.tcp_listen_port == 9651


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("peers = ['tcp://nohost']", "peers: endpoint 'tcp://nohost' has no port"),
        ("api_addr = '38989'", "api_addr: '38989' is not an address:port"),
        ("dns_upstream = ['x']", "dns_upstream:"),
        ("log_format = 'plain'", "unknown key"),  # process options are flags only
    ],
)
def test_values_are_checked_where_they_come_from(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(content)
    if message == "unknown key":
        assert message in load_file(path)[1][0]
        return
    with pytest.raises(SettingsError, match=message):
        load_file(path)


def test_flags_win_and_booleans_combine() -> None:
    file_values = {"tcp_listen_port": 1, "no_tun": True, "enable_dns": False}
    merged = merge({"tcp_listen_port": 2, "enable_dns": True}, file_values)
    assert (merged.tcp_listen_port, merged.no_tun, merged.enable_dns) == (2, True, True)


#: The keys the reference's config file accepts (MyceliumConfig, plus myceliumd-private's two).
REFERENCE_KEYS = {
    "peers", "tcp_listen_port", "disable_quic", "quic_listen_port", "no_tun", "tun_name",
    "disable_peer_discovery", "peer_discovery_port", "peer_discovery_interfaces", "api_addr",
    "jsonrpc_addr", "metrics_api_address", "firewall_mark", "update_workers", "topic_config",
    "cdn_cache", "enable_dns", "vsock_listen_port", "network_name", "network_key_file",
}  # fmt: skip


def test_every_setting_has_one_flag_and_every_reference_key_is_read() -> None:
    flags = [f.flag for f in FIELDS]
    assert len(flags) == len(set(flags))
    file_keys = {f.name for f in FIELDS if f.spec.in_file}
    assert file_keys >= REFERENCE_KEYS
    assert set(tomllib.loads(EXAMPLE.read_text())) <= file_keys


#: A value other than the default for every setting, spelled as in a config file.
EVERY = {
    "key_file": "/var/lib/mycelium/key.bin",
    "config_file": "/etc/mycelium/mycelium.toml",
    "debug": True,
    "silent": True,
    "log_format": "logfmt",
    "peers": ["tcp://[2001:db8::1]:9651", "quic://192.0.2.7:9651", "tls://node.example.org:1"],
    "public_peers": True,
    "tcp_listen_port": 1234,
    "disable_quic": True,
    "quic_listen_port": 1235,
    "peer_discovery_port": 1236,
    "disable_peer_discovery": True,
    "peer_discovery_interfaces": ["eth0", "wlan0"],
    "api_addr": "[::1]:8000",
    "jsonrpc_addr": "127.0.0.1:8001",
    "no_tun": True,
    "tun_name": "myc0",
    "metrics_api_address": "127.0.0.1:9100",
    "firewall_mark": 42,
    "update_workers": 4,
    "topic_config": "topics.toml",
    "cdn_cache": "/var/cache/mycelium",
    "vsock_listen_port": 7,
    "enable_dns": True,
    "dns_upstream": ["400::1", "5ff:0:0:0::2"],
    "max_routes": 1000,
    "max_routes_per_peer": 100,
    "max_inbound": 10,
    "max_inbound_per_source": 2,
    "allow_from": ["5c4:c176::/32", "400::1", "ab" * 32],
    "stun_servers": ["stun.example.org:3478", "default"],
    "disable_hole_punching": True,
    "network_name": "net",
    "network_key_file": "net.key",
}


def test_settings_survive_their_plain_form_through_marshal() -> None:
    """What the console script hands the process it becomes (cli/serve.py)."""
    assert set(EVERY) == {f.name for f in FIELDS}  # a new setting gets a value here
    settings = from_plain(EVERY)
    assert all(getattr(settings, f.name) != f.default for f in FIELDS)
    assert from_plain(marshal.loads(marshal.dumps(to_plain(settings)))) == settings
