"""Register the lake's tables in the Glue catalog from what is written (``lakeline catalog sync``).

`deploy sam` defines the Glue tables whose columns are declared up front (every silver table:
the streams' with date projection, the promoted runs with year/month projection). Every other
table — gold tables (the carbon emissions, the totesys star schema) and the SQL models'
``gold.NAME``, whose columns are produced by code — gets its columns from the Parquet it
holds: this module reads one file's footer (a range read), turns the Arrow schema into Glue
types (nested ones too), creates or updates the table, and registers each Hive partition
directory (``shard=a``) found under it, like a crawler that knows the layouts. Iceberg tables
register themselves (pyiceberg's Glue catalog).

Names: silver tables keep their name in the lake's Glue database (``transactions``); gold
tables are ``gold_<name>`` (``gold_fact_payment``, ``gold_daily_counts``), so the same Athena
SQL runs on both engines (``lakeline sql --dialect athena`` maps them back).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lakeline import log
from lakeline.adapters.aws.session import AwsClients, error_code, translate_errors
from lakeline.lake import Lake
from lakeline.models import discover
from lakeline.pipelines.registry import Registry
from lakeline.promotion.promote import current_files
from lakeline.stages.chunking import RangeFile
from lakeline.tables.schema import GLUE_PARQUET, TableSpec, hive_of

_log = log.get("aws.catalog")
_KV = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


@dataclass
class Synced:
    """What one table's sync did."""

    table: str
    glue_table: str
    status: str  # CREATED, UPDATED, NO_DATA
    columns: int = 0
    partitions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"table": self.table, "glue_table": self.glue_table, "status": self.status,
                "columns": self.columns, "partitions": len(self.partitions)}


def glue_name(table: TableSpec) -> str:
    """The Glue table of a lake table: silver ones by name, gold ones ``gold_<name>``."""
    return table.table if table.zone == "silver" else f"gold_{table.table}"


def needs_sync(table: TableSpec) -> bool:
    """True for the tables the template cannot define (their columns come from their data)."""
    if table.layout == "iceberg":
        return False
    return not (table.zone == "silver" and table.fields and table.layout in ("parquet", "runs"))


def _files(lake: Lake, table: TableSpec) -> list[str]:
    if table.layout == "runs":
        return current_files(lake, table.prefix)
    return sorted(i.key for i in lake.store.list(table.zone, table.prefix + "/") if i.key.endswith(".parquet")
                  and not any(part.startswith(("_", ".")) for part in i.key.split("/")))


def _partitions(table: TableSpec, files: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The Hive partition keys of ``files`` (the ``k=v`` folders under the table's prefix, in
    order) and each partition folder with its values."""
    keys: list[str] = []
    found: dict[str, list[str]] = {}
    for key in files:
        inner = key[len(table.prefix) + 1:]
        folder = inner.rsplit("/", 1)[0] if "/" in inner else ""
        pairs = [m.groups() for part in folder.split("/") if (m := _KV.match(part))]
        if not keys:
            keys = [k for k, _ in pairs]
        if [k for k, _ in pairs] == keys and pairs:
            found[f"{table.prefix}/{folder}"] = [v for _, v in pairs]
    return keys, found


def sync_table(lake: Lake, clients: AwsClients, table: TableSpec, database: str) -> Synced:
    """Create or update the Glue table of ``table`` from its data, and register its partitions."""
    import pyarrow.parquet as pq  # heavy: imported when used

    name = glue_name(table)
    files = _files(lake, table)
    if not files:
        return Synced(table.name, name, "NO_DATA")
    info = lake.store.head(table.zone, files[-1])
    source: Any = RangeFile(lake, table.zone, files[-1], info.size)  # the footer by range reads
    schema = pq.read_schema(source)
    keys, partitions = _partitions(table, files)
    columns = [{"Name": f.name, "Type": hive_of(f.type)} for f in schema if f.name not in keys]
    location = lake.store.scan_uri(table.zone, table.prefix) + "/"  # partitions have their own
    table_input = {
        "Name": name, "TableType": "EXTERNAL_TABLE",
        "Description": f"lakeline {table.name} ({table.layout}; registered from its data)",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in keys],
        "StorageDescriptor": {"Columns": columns, "Location": location, **GLUE_PARQUET},
    }
    glue = clients.client("glue")
    status = "UPDATED"
    try:
        with translate_errors(f"Glue CreateTable {database}.{name}"):
            glue.create_table(DatabaseName=database, TableInput=table_input)
        status = "CREATED"
    except Exception as exc:
        if error_code(exc) != "AlreadyExistsException":
            raise
        with translate_errors(f"Glue UpdateTable {database}.{name}"):
            glue.update_table(DatabaseName=database, TableInput=table_input)
    done = Synced(table.name, name, status, columns=len(columns))
    if partitions:
        done.partitions = _register(glue, database, name, partitions, lake, table, columns)
    return done


def _register(glue: Any, database: str, name: str, partitions: dict[str, list[str]], lake: Lake,
              table: TableSpec, columns: list[dict[str, str]]) -> list[str]:
    known: set[tuple[str, ...]] = set()
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"DatabaseName": database, "TableName": name}
        if token:
            kwargs["NextToken"] = token
        with translate_errors(f"Glue GetPartitions {database}.{name}"):
            page = glue.get_partitions(**kwargs)
        known |= {tuple(p["Values"]) for p in page.get("Partitions", [])}
        token = page.get("NextToken")
        if not token:
            break
    new = [(folder, values) for folder, values in sorted(partitions.items()) if tuple(values) not in known]
    for i in range(0, len(new), 100):  # BatchCreatePartition takes 100 at a time
        batch = [{"Values": values, "StorageDescriptor": {
            "Columns": columns, "Location": lake.store.scan_uri(table.zone, folder) + "/", **GLUE_PARQUET}}
            for folder, values in new[i:i + 100]]
        with translate_errors(f"Glue BatchCreatePartition {database}.{name}"):
            glue.batch_create_partition(DatabaseName=database, TableName=name, PartitionInputList=batch)
    return [folder for folder, _ in new]


def lake_tables(lake: Lake, reg: Registry) -> list[TableSpec]:
    """Every table of the lake: the pipelines' and each SQL model's ``gold.NAME``."""
    tables = [t for _, t in reg.tables()]
    return tables + [TableSpec(f"gold.{m.name}", zone="gold", description="SQL model")
                     for m in discover(lake.settings.home)]


def sync_catalog(lake: Lake, clients: AwsClients, tables: Iterable[TableSpec]) -> list[Synced]:
    """Sync every table of ``tables`` the template cannot define (:func:`needs_sync`)."""
    database = lake.settings.aws.database(lake.settings.lake.name)
    out = [sync_table(lake, clients, t, database) for t in tables if needs_sync(t)]
    _log.info("glue catalog synced", extra={"data": [s.to_dict() for s in out]})
    return out


__all__ = ["Synced", "glue_name", "lake_tables", "needs_sync", "sync_catalog", "sync_table"]
