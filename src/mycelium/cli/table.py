"""Text tables and units as the reference's CLI prints them (prettytable's default format)."""

from __future__ import annotations

from collections.abc import Sequence


def render(rows: Sequence[Sequence[object]]) -> str:
    """Every row boxed, the first one included, cells left-aligned with one space of padding."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [rule]
    for row in cells:
        lines.append(
            "|" + "|".join(f" {c.ljust(w)} " for c, w in zip(row, widths, strict=True)) + "|"
        )
        lines.append(rule)
    return "\n".join(lines)


def format_bytes(count: int) -> str:
    """Binary units with two decimals: ``512.00 B``, ``1.50 KiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_seconds(total: int) -> str:
    """``3d 4h 5m 6s``, leading zero units left out (the reference wraps hours and days at 60,
    printing ``2d 48h`` for two days; we do not)."""
    seconds, minutes = total % 60, (total // 60) % 60
    hours, days = (total // 3600) % 24, total // 86400
    if days:
        return f"{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"
