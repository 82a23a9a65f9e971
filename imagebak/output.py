"""Human tables for a terminal, JSON for machines: the two output shapes of every command."""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

import click

from imagebak.errors import one_line

FORMATS = ("text", "json")
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Human-readable text, or JSON for scripts and CI.",
)


def _width(text: str) -> int:
    """Display width: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned columns; a value with a line break in it (an odd region name) is escaped, not wrapped."""
    cells = [[str(h) for h in headers], *[[("" if c is None else one_line(str(c))) for c in row] for row in rows]]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    if sys.stdout.isatty():  # the last column is cut to the terminal's width (COLUMNS)
        room = _columns() - sum(w + 2 for w in widths[:-1])
        if 10 <= room < widths[-1]:
            cells = [[*row[:-1], _cut(row[-1], room)] for row in cells]
            widths[-1] = room
    lines = [
        "  ".join(cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)


def _columns() -> int:
    """The terminal's width, as ``shutil.get_terminal_size`` reads it (without importing shutil and,
    through it, three compression modules, on the start-up path of every command)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def _cut(text: str, room: int) -> str:
    """``text`` shortened to ``room`` display columns, marked with an ellipsis when cut."""
    if _width(text) <= room:
        return text
    out = ""
    for ch in text:
        if _width(out + ch) > room - 1:
            break
        out += ch
    return out + "…"


def emit_json(payload: Any) -> None:
    """Indented on a terminal; otherwise one line, so a cron log of many runs is JSON Lines."""
    indent = 2 if sys.stdout.isatty() else None
    click.echo(json.dumps(payload, ensure_ascii=False, indent=indent, default=str))


_zone: tzinfo | None = None  # where human output shows times; None: the machine's local zone


def set_zone(name: str | None) -> None:
    """``--tz``: an IANA zone name (Asia/Shanghai), UTC, or local (the default)."""
    global _zone
    if name in (None, "", "local"):
        _zone = None
    elif name.upper() in ("UTC", "Z"):
        _zone = timezone.utc
    else:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # only for a zone name: it reads sysconfig

        try:
            _zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise click.BadParameter(f"{name!r} is not a time zone; use e.g. Asia/Shanghai, UTC or local") from None


def show_time(moment: datetime | str | None) -> str:
    """The one time format of human output: ``2026-12-01 02:00 +08:00``, in the --tz zone."""
    if moment is None or moment == "":
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(_zone)
    offset = int((local.utcoffset() or timedelta(0)).total_seconds() // 60)
    sign = "-" if offset < 0 else "+"
    return f"{local:%Y-%m-%d %H:%M} {sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
