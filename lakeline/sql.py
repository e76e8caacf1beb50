"""SQL over the lake with DuckDB.

Every directory of Parquet files directly under the ``silver`` and ``gold`` zones is a table
named ``<zone>.<directory>`` (``silver.shipments``); Hive partitions (``dt=…``) become columns.
Rejects of every pipeline are ``quarantine.rejects``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from lakeline.lake import Lake
from lakeline.stages.transform import duckdb_connection

TABLE_ZONES = ("silver", "gold")


@dataclass(frozen=True)
class TableInfo:
    """A queryable table and where its files are."""

    name: str
    location: str
    files: int
    bytes: int


def discover(lake: Lake) -> list[TableInfo]:
    """Tables present in the lake, by name."""
    found: dict[str, list[int]] = {}
    locations: dict[str, str] = {}
    for zone in TABLE_ZONES:
        for info in lake.store.list(zone):
            if not info.key.endswith(".parquet") or "/" not in info.key:
                continue
            table = info.key.split("/", 1)[0]
            if table.startswith((".", "_")):
                continue
            name = f"{zone}.{table}"
            found.setdefault(name, []).append(info.size)
            locations[name] = lake.store.scan_uri(zone, table)
    rejects = [i.size for i in lake.store.list("error", "rejects/") if i.key.endswith(".parquet")]
    if rejects:
        found["quarantine.rejects"] = rejects
        locations["quarantine.rejects"] = lake.store.scan_uri("error", "rejects")
    return [
        TableInfo(name, locations[name], len(sizes), sum(sizes)) for name, sizes in sorted(found.items())
    ]


def connect(lake: Lake, *, threads: int = 0) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per lake table."""
    con = duckdb_connection(threads)
    con.execute("SET preserve_insertion_order=true")
    for schema in (*TABLE_ZONES, "quarantine"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for t in discover(lake):
        schema, _, table = t.name.partition(".")
        glob = t.location.rstrip("/") + "/**/*.parquet"
        con.execute(
            f'CREATE OR REPLACE VIEW {schema}."{table}" AS SELECT * FROM read_parquet('
            f"'{_escape(glob)}', hive_partitioning = true, union_by_name = true)"
        )
    return con


def _escape(text: str) -> str:
    return text.replace("'", "''")
