"""Every setting of the daemon, declared once: its type, default, flag, help and config-file key.

The click options (``cli/options.py``), the TOML file's validation (``load_file``) and the
node's configuration (``daemon.node_config``) are all derived from the fields of ``Settings``.
Config-file keys are the long flags in snake_case, as with the reference (a missing default
file is fine, a missing explicit file is an error); flags given on the command line win over
the file, the file over the defaults.
"""

from __future__ import annotations

import ipaddress
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .allow import parse_rule
from .links.endpoint import Endpoint
from .nat.servers import check_stun_server
from .routing.limits import RouterLimits
from .subnet import Subnet


class SettingsError(ValueError):
    """A setting that cannot be used; the message says where it came from and why."""


@dataclass(frozen=True, slots=True)
class Spec:
    """How a setting is spelled and checked (stored in the field's metadata)."""

    help: str
    short: str | None = None
    #: The long flag when it is not ``--`` + the field name with dashes.
    flag: str | None = None
    metavar: str | None = None
    #: Whether the config file may set it (logging and the file itself may not).
    in_file: bool = True
    #: Shown only by ``mycelium-private`` (the reference's separate binary).
    private: bool = False
    #: Accepted for compatibility, not shown in ``--help``.
    hidden: bool = False
    #: Inclusive bounds of an integer.
    bounds: tuple[int, int] | None = None
    choices: tuple[str, ...] | None = None
    #: Turns one raw text (a list item, or the value) into the typed value; ValueError if bad.
    parse: Callable[[str], Any] | None = None


def setting(default: Any, help: str, **spec: Any) -> Any:
    return field(default=default, metadata={"spec": Spec(help, **spec)})


def _ipv6(text: str) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(text)


def listen_address(text: str) -> str:
    """``host:port`` with a literal IP and a port, as the reference's SocketAddr accepts."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 0xFFFF:
        raise ValueError(f"{text!r} is not an address:port (e.g. 127.0.0.1:8989)")
    try:
        ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
    except ValueError:
        raise ValueError(f"{text!r} does not start with a literal IP address") from None
    return text


_LIMITS = RouterLimits()

PORT = (0, 0xFFFF)
U32 = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class Settings:
    """What a user can set, with the reference's defaults (``mycelium --help``)."""

    key_file: Path | None = setting(
        None,
        "Path to the private key file; created if it does not exist.",
        short="-k",
        in_file=False,
    )
    config_file: Path | None = setting(
        None, "Configuration file (TOML).", short="-c", in_file=False
    )
    debug: bool = setting(False, "Enable debug logging.", short="-d", in_file=False)
    silent: bool = setting(False, "Disable all logs except error logs.", in_file=False)
    log_format: str = setting(
        "compact",
        "The logging format to use.",
        in_file=False,
        choices=("compact", "logfmt", "plain"),
    )
    peers: tuple[Endpoint, ...] = setting(
        (),
        "Peers to connect to: tcp://, quic://, tls:// or vsock:// and an address or host name "
        "with its port (e.g. tcp://[2001:db8::1]:9651 tcp://node.example.org:9651).",
        metavar="ENDPOINT",
        parse=Endpoint.parse,
    )
    public_peers: bool = setting(
        False,
        "(pymycelium) Also peer with the public nodes the reference's operators host (TCP over "
        "IPv4 and IPv6), which joins this node to the global network.",
    )
    tcp_listen_port: int = setting(
        9651, "Port to listen on for tcp connections.", short="-t", bounds=PORT
    )
    disable_quic: bool = setting(False, "Disable quic protocol for connecting to peers.")
    quic_listen_port: int = setting(
        9651, "Port to listen on for quic connections.", short="-q", bounds=PORT
    )
    peer_discovery_port: int = setting(
        9650, "Port to use for link local peer discovery (UDP).", bounds=PORT
    )
    disable_peer_discovery: bool = setting(False, "Disable peer discovery.")
    peer_discovery_interfaces: tuple[str, ...] = setting(
        (),
        "Limit peer discovery to this interface (repeatable).",
        flag="--peer-discovery-interface",
    )
    api_addr: str | None = setting(
        "127.0.0.1:8989", "Address of the HTTP API server.", parse=listen_address
    )
    jsonrpc_addr: str | None = setting(
        "127.0.0.1:8990", "Address of the JSON-RPC API server.", parse=listen_address
    )
    no_tun: bool = setting(False, "Run without creating a TUN interface.")
    tun_name: str = setting("mycelium", "Name to use for the TUN interface.")
    metrics_api_address: str | None = setting(
        None, "Address on which to expose prometheus metrics.", parse=listen_address
    )
    firewall_mark: int | None = setting(
        None, "The firewall mark to set on the mycelium sockets.", bounds=U32
    )
    update_workers: int = setting(
        1,
        "Accepted for compatibility and ignored (the reference's number of route-update "
        "workers; this node processes updates in one task).",
        bounds=(1, 254),
    )
    topic_config: Path | None = setting(None, "A .toml file with the message topic configuration.")
    cdn_cache: Path | None = setting(None, "Cache directory for the CDN module.")
    vsock_listen_port: int | None = setting(
        None, "Port to listen on for vsock connections.", bounds=U32
    )
    enable_dns: bool = setting(
        False,
        "Answer DNS on UDP [::]:53 by forwarding to the nearest public node's resolver "
        "(1.1.1.1 while none is reachable); the node does not start if the port cannot be "
        "bound. Queries reach the overlay through the TUN interface, so with --no-tun they fail "
        "once a public node is chosen.",
    )
    dns_upstream: tuple[ipaddress.IPv6Address, ...] = setting(
        (),
        "(pymycelium) Forward DNS to these overlay addresses instead of the public nodes "
        "(repeatable; the cheapest reachable one is used).",
        metavar="IPV6",
        parse=_ipv6,
    )
    max_routes: int = setting(
        _LIMITS.max_routes,
        "(pymycelium) Most subnets the route table holds; Updates for more are refused and "
        "counted.",
        bounds=(1, 10_000_000),
    )
    max_routes_per_peer: int = setting(
        _LIMITS.max_routes_per_neighbour,
        "(pymycelium) Most routes one peer may give this node (its share of the table).",
        bounds=(1, 10_000_000),
    )
    max_inbound: int | None = setting(
        None,
        "(pymycelium) Most inbound connections per listener (default: 1024, within the "
        "open-file limit).",
        bounds=(1, 1_000_000),
    )
    max_inbound_per_source: int | None = setting(
        None,
        "(pymycelium) Most inbound connections from one IPv4 address or IPv6 /64 (default: 8).",
        bounds=(1, 1_000_000),
    )
    allow_from: tuple[Subnet, ...] = setting(
        (),
        "(pymycelium) Accept IP packets and messages only from this public key, overlay address "
        "(its node's /64) or overlay subnet (repeatable; default: from everyone). Others are "
        "dropped and counted; routing for other nodes is unaffected.",
        metavar="PUBKEY|SUBNET",
        parse=parse_rule,
    )
    stun_servers: tuple[str, ...] = setting(
        (),
        "(pymycelium) Learn our public address from this STUN server, for direct links "
        "through NATs (repeatable; two servers also tell what kind of NAT this is; 'default' "
        "names public servers). None by default.",
        flag="--stun-server",
        metavar="HOST:PORT",
        parse=check_stun_server,
    )
    disable_hole_punching: bool = setting(
        False, "(pymycelium) Never offer or accept direct QUIC links through NATs."
    )
    network_name: str | None = setting(
        None, "Name of the private network (2 to 64 bytes).", private=True
    )
    network_key_file: Path | None = setting(
        None, "File holding the private network's 32-byte key.", private=True
    )


@dataclass(frozen=True, slots=True)
class Field:
    """One setting as the loaders see it: the declared spec plus the shape of its type."""

    name: str
    spec: Spec
    default: Any
    #: bool, int, str or Path: the type of the value or, for lists, of each item.
    base: type
    is_list: bool
    optional: bool

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")


def _shape(hint: Any) -> tuple[type, bool, bool]:
    """(base type, is a list, may be None) of a field's annotation."""
    optional = False
    if isinstance(hint, types.UnionType):
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, members[0]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True, optional
    return hint, False, optional


def _fields() -> tuple[Field, ...]:
    hints = typing.get_type_hints(Settings)
    out = []
    for f in fields(Settings):
        base, is_list, optional = _shape(hints[f.name])
        out.append(Field(f.name, f.metadata["spec"], f.default, base, is_list, optional))
    return tuple(out)


FIELDS: tuple[Field, ...] = _fields()
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}


def convert(f: Field, raw: Any) -> Any:
    """A raw value (from a flag or the file, already of the right kind) as the typed value."""
    spec = f.spec
    if f.is_list:
        items = [raw] if isinstance(raw, str) else list(raw)
        return tuple(_item(f, item) for item in items)
    if raw is None:
        return None
    if f.base is bool:
        return bool(raw)
    if f.base is int:
        low, high = spec.bounds or (-(2**63), 2**63 - 1)
        if not low <= raw <= high:
            what = "a port number" if spec.bounds == PORT else f"in {low}..{high}"
            raise ValueError(f"{raw} is not {what}")
        return raw
    if spec.choices is not None and raw not in spec.choices:
        raise ValueError(f"{raw!r} is not one of {', '.join(spec.choices)}")
    return _item(f, raw)


def to_plain(settings: Settings) -> dict[str, Any]:
    """``settings`` spelled as a config file spells them (strings, numbers, booleans, None,
    lists of strings): ``from_plain`` reads them back equal, ``marshal`` carries them from the
    process that parsed the command line to the one that runs the node (cli/serve.py)."""
    out: dict[str, Any] = {}
    for f in FIELDS:
        value = getattr(settings, f.name)
        if f.is_list:
            out[f.name] = [str(item) for item in value]
        else:
            out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def from_plain(values: Mapping[str, Any]) -> Settings:
    return Settings(**{f.name: convert(f, values[f.name]) for f in FIELDS})


def _item(f: Field, raw: str) -> Any:
    if f.base is Path:
        return Path(raw)
    return f.spec.parse(raw) if f.spec.parse is not None else raw


# --- the config file ------------------------------------------------------------------------
def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "mycelium" / "mycelium.toml"


def load_file(path: Path | None) -> tuple[dict[str, Any], list[str], Path | None]:
    """(typed values, warnings, the file read or None) from ``path`` or the default location."""
    explicit = path is not None
    path = path or default_config_path()
    try:
        exists = path.exists()
    except OSError as exc:  # e.g. another user's HOME: the default path is not even visible
        if explicit:
            raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
        return {}, [f"default config file {path} not readable ({exc.strerror}); ignored"], None
    if not exists:
        if explicit:
            raise SettingsError(f"Config file {path} not found")
        return {}, [], None
    import tomllib  # only with a config file

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, raw in data.items():
        f = BY_NAME.get(key)
        if f is None or not f.spec.in_file:
            warnings.append(f"config file {path}: unknown key {key!r} ignored")
            continue
        _check_kind(f, raw, path)
        try:
            values[key] = convert(f, raw)
        except ValueError as exc:
            raise SettingsError(f"config file {path}: {key}: {exc}") from None
    return values, warnings, path


_KIND_NAMES = {bool: "boolean", int: "integer", str: "string", Path: "string"}


def _check_kind(f: Field, raw: Any, path: Path) -> None:
    item = str if f.base not in (bool, int) else f.base
    if f.is_list:
        # A single string is taken as a list of one, as the reference does for peers.
        if isinstance(raw, str):
            return
        if not isinstance(raw, list):
            raise SettingsError(f"config file {path}: {f.name} must be of type list")
        if not all(isinstance(v, str) for v in raw):
            raise SettingsError(f"config file {path}: {f.name} must be a list of strings")
        return
    ok = isinstance(raw, item) and not (item is int and isinstance(raw, bool))
    if not ok:
        raise SettingsError(
            f"config file {path}: {f.name} must be of type {_KIND_NAMES[item]}, "
            f"got {type(raw).__name__}"
        )


def merge(given: Mapping[str, Any], file_values: Mapping[str, Any]) -> Settings:
    """Flags given on the command line win over the file, the file over the defaults.

    Flags (booleans) combine with OR, as the reference's ``flag || file`` does.
    """
    values = dict(file_values)
    for name, value in given.items():
        if BY_NAME[name].base is bool and not BY_NAME[name].is_list:
            values[name] = bool(value) or bool(file_values.get(name, False))
        else:
            values[name] = value
    return Settings(**values)
