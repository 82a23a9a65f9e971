"""Human tables for a terminal, JSON for machines: the two output shapes of every command."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
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
    lines = [
        "  ".join(cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    return "\n".join(lines)


def emit_json(payload: Any) -> None:
    """Indented on a terminal; otherwise one line, so a cron log of many runs is JSON Lines."""
    indent = 2 if sys.stdout.isatty() else None
    click.echo(json.dumps(payload, ensure_ascii=False, indent=indent, default=str))


def local_time(moment: datetime | None, like: datetime) -> str:
    """Show a UTC moment in the offset the user wrote their ``start`` in."""
    if moment is None:
        return "-"
    offset = like.utcoffset() or timedelta(0)
    return moment.astimezone(timezone(offset)).strftime("%Y-%m-%d %H:%M%z").replace("+0000", "Z")
