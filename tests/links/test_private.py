"""Private-network rules: what the reference accepts as a network name and key file, and what a
private node dials with (TLS for TCP and discovered peers, vsock plain, never QUIC)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from link_recorder import wait_for
from mycelium.identity import Identity
from mycelium.links.endpoint import Endpoint
from mycelium.links.private import KEY_SIZE, PrivateNetwork, PrivateNetworkError
from mycelium.node import Node, NodeConfig


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "net.key"
    path.write_bytes(bytes(range(KEY_SIZE)))
    return path


@given(st.text(min_size=0, max_size=70))
def test_name_length_is_counted_in_utf8_bytes(name: str) -> None:
    path = Path(__file__)  # any readable file of 32+ bytes
    size = len(name.encode())
    if 2 <= size <= 64:
        assert PrivateNetwork.load(name, path).name == name.encode()
    else:
        with pytest.raises(PrivateNetworkError, match="2 to 64 bytes"):
            PrivateNetwork.load(name, path)


def test_multibyte_names_at_the_limits(key_file: Path) -> None:
    assert PrivateNetwork.load("é", key_file).name == "é".encode()  # 1 character, 2 bytes
    assert len(PrivateNetwork.load("€" * 21, key_file).name) == 63
    with pytest.raises(PrivateNetworkError):
        PrivateNetwork.load("€" * 22, key_file)  # 66 bytes


def test_key_is_the_first_32_bytes(tmp_path: Path) -> None:
    long = tmp_path / "long.key"
    long.write_bytes(bytes(range(40)))
    assert PrivateNetwork.load("lab", long).key == bytes(range(32))
    short = tmp_path / "short.key"
    short.write_bytes(b"\x00" * 31)
    with pytest.raises(PrivateNetworkError, match="31 bytes"):
        PrivateNetwork.load("lab", short)
    with pytest.raises(PrivateNetworkError, match="cannot read"):
        PrivateNetwork.load("lab", tmp_path / "missing.key")


def _private_config(key_file: Path) -> NodeConfig:
    config = NodeConfig.loopback()
    config.private = PrivateNetwork.load("lab", key_file)
    return config


async def test_private_node_dials_tls_and_never_quic(key_file: Path) -> None:
    node = Node(_private_config(key_file))
    assert node.peer_manager._dialers["tcp"] == node._dial_tls  # type: ignore[attr-defined]
    with pytest.raises(ConnectionError, match="disabled"):
        await node._dial_quic(Endpoint.parse("quic://[::1]:9651"))


async def test_peers_of_switched_off_transports_are_kept_but_never_connect() -> None:
    # The reference keeps such peers in its table and logs each refused attempt; it starts.
    config = NodeConfig.loopback(
        [Endpoint.parse("quic://[::1]:9"), Endpoint.parse("tls://[::1]:9")]
    )
    config.disable_quic = True
    async with Node(config) as node:
        entries = node.peer_manager.peers()
        assert {e.endpoint.proto for e in entries} == {"quic", "tls"}
        await wait_for(lambda: all(e.failures >= 1 for e in entries))
        assert not node.links


async def test_private_node_runs_no_quic_and_dials_discovered_peers_with_tls(
    key_file: Path,
) -> None:
    async with Node(_private_config(key_file)) as node:
        assert node.quic_port is None
        assert node._discovered(Endpoint.parse("tcp://[fe80::1%1]:9651"))
        (entry,) = node.peer_manager.peers()
        assert entry.endpoint.proto == "tls"


async def test_public_node_has_quic(key_file: Path) -> None:
    config = NodeConfig.loopback()
    config.identity = Identity.generate()
    async with Node(config) as node:
        assert node.quic_port is not None and node.quic_port > 0
        assert "quic" in node.peer_manager._dialers  # type: ignore[attr-defined]


def test_the_network_key_stays_out_of_repr(key_file: Path) -> None:
    network = PrivateNetwork.load("testnet", key_file)
    shown = repr(network) + str(network)
    assert network.key.hex() not in shown
    assert repr(network.key)[2:-1] not in shown
    assert "testnet" in shown
