"""The TOML configuration file: the daemon's long flags in snake_case (config_example.toml).

Default path on Linux: ``$XDG_CONFIG_HOME/mycelium/mycelium.toml`` (``~/.config/...``); a missing
default file is fine, a missing explicit file is an error. Flags given on the command line win.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

#: Key -> accepted Python type(s), as the reference's MyceliumConfig declares them.
KEYS: dict[str, type | tuple[type, ...]] = {
    "peers": list,
    "tcp_listen_port": int,
    "disable_quic": bool,
    "quic_listen_port": int,
    "no_tun": bool,
    "tun_name": str,
    "disable_peer_discovery": bool,
    "peer_discovery_port": int,
    "peer_discovery_interfaces": list,
    "api_addr": str,
    "jsonrpc_addr": str,
    "metrics_api_address": str,
    "firewall_mark": int,
    "update_workers": int,
    "topic_config": str,
    "cdn_cache": str,
    "enable_dns": bool,
    "dns_upstream": list,
    "vsock_listen_port": int,
    "network_name": str,
    "network_key_file": str,
}
_PORTS = ("tcp_listen_port", "quic_listen_port", "peer_discovery_port")


class ConfigError(Exception):
    """A configuration file that cannot be used; the message says where and why."""


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "mycelium" / "mycelium.toml"


def load_config(path: Path | None) -> tuple[dict[str, Any], list[str]]:
    """(values, warnings) from ``path`` or the default location."""
    explicit = path is not None
    path = path or default_config_path()
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. another user's HOME: the default path is not even visible
        if explicit:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        return {}, [f"default config file {path} not readable ({exc.strerror}); ignored"]
    if not exists:
        if explicit:
            raise ConfigError(f"Config file {path} not found")
        return {}, []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in data.items():
        expected = KEYS.get(key)
        if expected is None:
            warnings.append(f"config file {path}: unknown key {key!r} ignored")
            continue
        if (expected is int and isinstance(value, bool)) or not isinstance(value, expected):
            raise ConfigError(
                f"config file {path}: {key} must be of type {_type_name(expected)}, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"config file {path}: {key} must be a list of strings")
        if key in _PORTS and not 0 <= value <= 0xFFFF:
            raise ConfigError(f"config file {path}: {key} {value} is not a port number")
        values[key] = value
    return values, warnings


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {list: "list", int: "integer", bool: "boolean", str: "string"}
    if isinstance(expected, tuple):
        return " or ".join(names.get(t, t.__name__) for t in expected)
    return names.get(expected, expected.__name__)
