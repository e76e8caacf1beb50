"""DuckDB connections as lakeline configures them (UTC session time, optional memory bound)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb


def duckdb_connection(
    threads: int = 0, *, memory_limit: str | None = None, spill_dir: Path | None = None,
    keep_order: bool = False,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with UTC session time (naive timestamps are UTC).

    ``memory_limit`` (e.g. ``"768MB"``) bounds DuckDB's memory; with ``spill_dir`` larger
    work is spilled there instead of failing. ``keep_order``: results keep the order of their
    source (DuckDB documents row order only then); off by default, which is faster."""
    import duckdb  # heavy: loaded by the first connection, not by importing lakeline

    config: dict[str, Any] = {"threads": threads} if threads > 0 else {}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if spill_dir is not None:
        config["temp_directory"] = str(spill_dir)
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone='UTC'")
    con.execute(f"SET preserve_insertion_order={'true' if keep_order else 'false'}")
    return con
