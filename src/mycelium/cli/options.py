"""The daemon's click options, generated from ``settings.Settings``: one declaration each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..settings import FIELDS, Field, Settings, SettingsError, convert, merge


def _option(f: Field, private: bool) -> Callable[[Any], Any]:
    spec = f.spec
    names = [f.flag] if spec.short is None else [spec.short, f.flag]
    kwargs: dict[str, Any] = {
        "help": spec.help,
        "hidden": spec.hidden or (spec.private and not private),
        "metavar": spec.metavar,
    }
    if f.base is bool:
        kwargs["is_flag"] = True
    elif f.is_list:
        kwargs["multiple"] = True
    else:
        kwargs["default"] = f.default
        kwargs["show_default"] = f.default is not None
        if spec.choices is not None:
            kwargs["type"] = click.Choice(spec.choices)
        elif f.base is int:
            kwargs["type"] = click.IntRange(*spec.bounds) if spec.bounds else int
        elif f.base is Path:
            kwargs["type"] = click.Path(path_type=Path, dir_okay=f.name != "key_file")
    return click.option(*names, f.name, **kwargs)


def node_options(private: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a click command with one option per setting (private ones shown if asked)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(FIELDS):
            func = _option(f, private)(func)
        return func

    return decorate


def given(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """The typed values of the options that were actually given on the command line."""
    out: dict[str, Any] = {}
    for f in FIELDS:
        raw = params.get(f.name)
        source = ctx.get_parameter_source(f.name)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            continue
        if raw is None or raw == () or (f.base is bool and not raw):
            continue
        try:
            out[f.name] = convert(f, raw)
        except ValueError as exc:
            raise click.ClickException(f"{f.flag}: {exc}") from None
    return out


def settings_from(
    ctx: click.Context, params: dict[str, Any]
) -> tuple[Settings, list[str], Path | None]:
    """Command line over config file over defaults; the warnings the file produced, and the
    file read (None when there was none)."""
    from ..settings import load_file

    flags = given(ctx, params)
    try:
        file_values, warnings, path = load_file(flags.get("config_file"))
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    return merge(flags, file_values), warnings, path
