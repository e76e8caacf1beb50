"""Output helpers: JSON for machines, tables for people, progress on stderr only for TTYs."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

import click
import orjson

if TYPE_CHECKING:
    from rich.console import Console


@cache
def err_console() -> Console:
    """The rich console on stderr (progress bars); rich is imported on first use."""
    from rich.console import Console  # heavy: rich (about 25 ms), not paid by a JSON or CSV answer

    return Console(stderr=True)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):  # DuckDB sums and DECIMAL columns: keep them numbers
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (DECIMAL values as JSON numbers)."""
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=_default).decode())


def emit_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """Print a table on stdout."""
    from rich.console import Console  # heavy: rich
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(str(c))
    for r in rows:
        table.add_row(*["" if v is None else str(v) for v in r])
    # not a terminal (a pipe, a file): rich would cut the table to 80 columns; rows stay whole
    width = None if sys.stdout.isatty() else 1_000_000
    Console(soft_wrap=True, width=width).print(table)


def emit_kv(data: dict[str, Any], title: str | None = None) -> None:
    """Print key/value pairs."""
    emit_table(["field", "value"], [(k, v) for k, v in data.items()], title)


def progress_enabled() -> bool:
    """Progress bars only when stderr is a terminal."""
    return sys.stderr.isatty()
