"""The TOML config file: values, defaults, errors (interfaces.md, config_example.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mycelium.config import ConfigError, default_config_path, load_config

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "config_example.toml"
#: An unedited copy of the reference's example, for machines without the shared folder.
EXAMPLE = SHARED if SHARED.exists() else Path(__file__).parent / "data" / "config_example.toml"


def test_reference_example_file_loads(tmp_path: Path) -> None:
    values, warnings = load_config(EXAMPLE)
    assert warnings == []
    assert values["tcp_listen_port"] == 9651
    assert values["tun_name"] == "mycelium"
    assert len(values["peers"]) == 6


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_missing_default_file_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_config_path() == tmp_path / "mycelium" / "mycelium.toml"
    assert load_config(None) == ({}, [])


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
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_unknown_key_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("tun_name = 'x'\nbogus = 1\n")
    values, warnings = load_config(path)
    assert values == {"tun_name": "x"}
    assert len(warnings) == 1 and "bogus" in warnings[0]


def test_unreachable_default_file_is_a_warning_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mycelium.config as config

    def denied(self: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(config.Path, "exists", denied)
    values, warnings = load_config(None)
    assert values == {} and "not readable" in warnings[0]
    with pytest.raises(ConfigError, match="Permission denied"):
        load_config(tmp_path / "explicit.toml")
