"""What a model can read and whether it changed: the lake's tables and one fingerprint per input.

A fingerprint is cheap to take and changes whenever the table's data does:

- a Parquet dataset (``silver.x``, ``gold.x``, ``quarantine.rejects``): the number of its
  ``.parquet`` objects, their total size and the latest ``last_modified`` (a listing, no read);
  tables of promoted runs count their ``_LATEST.json`` pointers too, since a promotion may
  only flip a pointer;
- an Iceberg table: its current snapshot id;
- another model's table (``gold.<model>``): the etag of its one file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lakeline.errors import NotFoundError
from lakeline.lake import Lake
from lakeline.models.spec import Model
from lakeline.sql import discover, has_iceberg
from lakeline.tables.iceberg import (
    catalog,  # pyiceberg and pyarrow: only for a lake with a catalog
    load_table,  # pyiceberg: only for Iceberg inputs
)
from lakeline.tables.schema import TableSpec

#: state-store table of the models' last materialisations (one item per model name).
STATE_TABLE = "models"
#: the key of a model's table in the gold zone.
DATA_FILE = "data.parquet"
#: a promoted partition's pointer (lakeline.promotion's LATEST; models do not import promotion).
POINTER = "_LATEST.json"


def model_key(name: str) -> str:
    """The gold key of model ``name``'s table."""
    return f"{name}/{DATA_FILE}"


def iceberg_names(lake: Lake) -> set[str]:
    """``namespace.table`` of every Iceberg table (listed, not planned: no manifest is read)."""
    if not has_iceberg(lake):
        return set()

    cat = catalog(lake)
    return {".".join(ident).lower() for ns in cat.list_namespaces() for ident in cat.list_tables(ns)}


def known_tables(lake: Lake, tables: Sequence[TableSpec], models: Sequence[Model],
                 iceberg: set[str] | None = None) -> set[str]:
    """The tables models may read, other than the models' own gold tables: those present in
    the lake, every table a pipeline declares (present once it has run) and the Iceberg tables.

    A model's earlier output (``gold/<name>/data.parquet`` alone, recorded in the state store)
    is left out, so finding it is no name clash; the table of a model file that was deleted
    stays readable like any other gold table."""
    names = {m.name for m in models}
    out: set[str] = set()
    for t in discover(lake, tables):
        schema, _, table = t.name.partition(".")
        if schema == "gold" and table in names and t.files == 1 and _materialised(lake, table):
            continue
        out.add(t.name)
    # layout "file" is how a model's own gold table is described: not a table a pipeline writes
    out |= {t.name for t in tables if t.layout != "file"}
    out |= iceberg_names(lake) if iceberg is None else iceberg
    return out


def _materialised(lake: Lake, name: str) -> bool:
    item = lake.state.get(STATE_TABLE, name)
    return item is not None and bool(item.data.get("materialised_at")) and \
        lake.store.exists("gold", model_key(name))


def fingerprint(lake: Lake, table: str, *, models: set[str], specs: dict[str, TableSpec],
                iceberg: set[str]) -> dict[str, Any]:
    """The fingerprint of input ``table`` now (JSON-ready; equal while its data is unchanged)."""
    schema, _, name = table.partition(".")
    if schema == "gold" and name in models:
        try:
            return {"etag": lake.store.head("gold", model_key(name)).etag}
        except NotFoundError:
            return {"etag": None}
    if table in iceberg:

        try:
            snapshot = load_table(lake, table).current_snapshot()
        except NotFoundError:
            return {"snapshot_id": None}
        return {"snapshot_id": snapshot.snapshot_id if snapshot is not None else None}
    zone, prefix, pointers = _location(table, specs)
    files, size, latest = 0, 0, ""
    for info in lake.store.list(zone, prefix):
        if info.key.endswith(".parquet"):
            files += 1
        elif not (pointers and info.key.endswith("/" + POINTER)):
            continue
        size += info.size
        latest = max(latest, info.last_modified.isoformat())
    return {"files": files, "bytes": size, "last_modified": latest or None}


def _location(table: str, specs: dict[str, TableSpec]) -> tuple[str, str, bool]:
    """Zone, key prefix and whether promotion pointers count, for a Parquet-dataset table."""
    if table == "quarantine.rejects":
        return "error", "rejects/", False
    schema, _, name = table.partition(".")
    spec = specs.get(table) or specs.get(table.removesuffix("__runs"))
    if spec is not None:
        return spec.zone, spec.prefix + "/", spec.layout == "runs"
    return schema, name + "/", False
