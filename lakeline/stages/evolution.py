"""Schema evolution of streaming tables: fields a source sends that the pipeline does not declare.

With ``on_unknown_field = "add"`` such a field becomes a new nullable ``string`` column of its
table. The table's schema history lives in the state store (table ``schemas``, key
``<pipeline>/<table>``): every version lists the fields added, when, and by which landed
object, so ``lakeline pipeline show`` can say where a column came from. Parquet datasets
read older files without the column as NULL (``union_by_name``); Iceberg tables get the column
through a schema update, which Iceberg records in the table's own history.

Two workers meeting the same new field race on a compare-and-swap; the loser re-reads and finds
its field there.
"""

from __future__ import annotations

import time
from typing import Any

from lakeline.errors import ConditionFailed, TransientError
from lakeline.lake import Lake
from lakeline.stages.spec import StreamSpec, StreamTable
from lakeline.tables.schema import Field

SCHEMAS = "schemas"
_ATTEMPTS = 20


def _key(spec: StreamSpec, table: str) -> str:
    return f"{spec.pipeline}/{table}"


def evolved(lake: Lake, spec: StreamSpec) -> StreamSpec:
    """``spec`` with the fields schema evolution added to its tables (as stored in ``lake``)."""
    if spec.on_unknown_field != "add":
        return spec
    tables = []
    changed = False
    for t in spec.tables:
        item = lake.state.get(SCHEMAS, _key(spec, t.name))
        added = tuple(Field(a["name"], a.get("type", "string")) for a in (item.data["added"] if item else []))
        changed = changed or bool(added)
        tables.append(StreamTable(t.name, t.fields, t.key, t.route, added))
    return spec.with_tables(tuple(tables)) if changed else spec


def add_fields(lake: Lake, spec: StreamSpec, table: str, names: list[str], source: str) -> StreamSpec:
    """Record ``names`` as new string fields of ``table`` (those not known yet) and return the
    evolved spec. ``source`` names the object that brought them."""
    key = _key(spec, table)
    for _ in range(_ATTEMPTS):
        item = lake.state.get(SCHEMAS, key)
        data: dict[str, Any] = dict(item.data) if item else {"added": [], "versions": []}
        known = {a["name"] for a in data["added"]}
        t = spec.table_named(table)
        declared = {f.name for f in t.fields} if t is not None else set()
        new = [n for n in dict.fromkeys(names) if n not in known and n not in declared]
        if not new:
            return evolved(lake, spec)
        now = time.time()
        data["added"] = [*data["added"], *({"name": n, "type": "string"} for n in new)]
        data["versions"] = [*data["versions"], {"version": len(data["versions"]) + 2, "added": new,
                                                "at": now, "source": source}]
        try:
            lake.state.replace(SCHEMAS, key, data, item)
        except ConditionFailed:
            continue  # another worker evolved the table first: look again
        return evolved(lake, spec)
    raise TransientError(f"schema of {key} kept changing under {_ATTEMPTS} attempts to add {names}")


def history(lake: Lake, pipeline: str, table: str) -> list[dict[str, Any]]:
    """The schema versions of a table after the declared one (version 1)."""
    item = lake.state.get(SCHEMAS, f"{pipeline}/{table}")
    return list(item.data.get("versions", [])) if item else []
