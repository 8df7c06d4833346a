"""What commands print: aligned tables for people, the server's JSON with --json."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

Column = tuple[str, Callable[[dict[str, Any]], object]]


def emit_json(data: Any) -> None:
    """Print `data` as indented JSON."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def when(value: str | None, *, empty: str = "-") -> str:
    """Return an API timestamp as `2026-05-01 14:03 UTC`, or `empty` when there is none."""
    if not value:
        return empty
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def day(value: str | None, *, empty: str = "never") -> str:
    """Return an API timestamp as its date, `2026-05-01`, or `empty` when there is none."""
    return when(value, empty=empty)[:10] if value else empty


def size(count: int) -> str:
    """Return a byte count for people: `812 B`, `4.2 KB`, `3.1 MB`."""
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / (1024 * 1024):.1f} MB"


def plural(count: int, noun: str) -> str:
    """Return `1 file`, `3 files`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    # One row per line: a newline or tab inside a value would break the alignment.
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


def table(rows: Iterable[dict[str, Any]], columns: Sequence[Column], *, empty: str) -> None:
    """Print `rows` as left-aligned columns under upper-case headers, or `empty` when none."""
    cells = [[_cell(get(row)) for _header, get in columns] for row in rows]
    if not cells:
        click.echo(empty)
        return
    headers = [header.upper() for header, _get in columns]
    widths = [max(len(line[i]) for line in [headers, *cells]) for i in range(len(columns))]
    for line in [headers, *cells]:
        padded = (text.ljust(width) for text, width in zip(line, widths, strict=True))
        click.echo("  ".join(padded).rstrip())


def fields(pairs: Sequence[tuple[str, object]]) -> None:
    """Print label/value pairs, labels aligned: the shape of one object."""
    width = max(len(label) for label, _value in pairs)
    for label, value in pairs:
        click.echo(f"{label.ljust(width)}  {_cell(value)}")
