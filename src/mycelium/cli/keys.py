"""Key-file subcommands: ``inspect`` and ``generate-keys``."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from ..identity import (
    Identity,
    KeyFileError,
    default_key_path,
    load_key_file,
    overlay_address,
    parse_public_key,
    save_key_file,
)


def check_key_directory(path: Path) -> None:
    """A key file outside the default location must go into an existing directory: a mistyped
    ``-k`` must not create a directory tree (the default location's directories are created)."""
    if path != default_key_path() and not path.parent.is_dir():
        raise click.ClickException(
            f"directory {path.parent} does not exist: create it first, or choose another --key-file"
        )


def format_inspect(public_key: bytes, as_json: bool) -> str:
    address = str(ipaddress.IPv6Address(overlay_address(public_key)))
    if as_json:
        import json  # not held by a running node

        return json.dumps({"publicKey": public_key.hex(), "address": address}, indent=2)
    return f"Public key: {public_key.hex()}\nAddress: {address}"


@click.command("inspect")
@click.option("--json", "as_json", is_flag=True, help="Output in json format.")
@click.argument("key", required=False)
@click.pass_obj
def inspect_cmd(obj: dict, as_json: bool, key: str | None) -> None:
    """Inspect a public key provided in hex format, or export the local public key if no key is
    given."""
    if key is not None:
        try:
            public_key = parse_public_key(key)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    else:
        key_path: Path = obj["key_file"]
        try:
            identity = load_key_file(key_path)
        except KeyFileError as exc:
            raise click.ClickException(str(exc)) from None
        if identity is None:
            raise click.ClickException(f"no key to inspect provided and no key found at {key_path}")
        public_key = identity.public_key
    click.echo(format_inspect(public_key, as_json))


@click.command("generate-keys")
@click.option("--force", is_flag=True, help="Overwrite an existing key file.")
@click.pass_obj
def generate_keys_cmd(obj: dict, force: bool) -> None:
    """Generate a new key at the key-file path (refuses to overwrite without --force)."""
    key_path: Path = obj["key_file"]
    existing: object
    try:
        existing = load_key_file(key_path)
    except KeyFileError:
        existing = None if force else True  # unreadable: only --force may replace it
    if existing is not None and not force:
        click.echo(
            f"Refusing to generate new keys as key file {key_path} already exists, "
            "use `--force` to generate them anyway",
            err=True,
        )
        return
    check_key_directory(key_path)
    try:
        save_key_file(Identity.generate(), key_path)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Generated new node keys at {key_path}", err=True)
