"""The tables pages: every table of the lake (what ``lakeline tables`` lists) with its rows, size
and format; a table's detail (schema, partitions, a sample, for Iceberg its snapshots and time
travel, the SQL model that builds it with its "run" action); and the SQL console (server only),
which runs a query as ``lakeline sql`` does (the same ``sql.max_bytes`` guard) and charts it.

Every figure comes from the lake's own SQL path (:mod:`lakeline.sql`): the row counts and samples
are ``SELECT`` statements over the same views ``lakeline sql`` queries.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lakeline.errors import LakelineError, NotFoundError, UsageError
from lakeline.sql import (
    Query,
    Scope,
    TableInfo,
    bind_query,
    connect,
    discover,
    has_iceberg,
    head,
    iceberg_tables,
    table_files,
)
from lakeline.sql_names import split_explain
from lakeline.ui.render import Rendered, View, action, page

if TYPE_CHECKING:
    import duckdb

    from lakeline.tables.schema import TableSpec

#: rows of a table's sample
SAMPLE_ROWS = 20
#: rows the SQL console shows (a note says when the result has more)
SQL_ROWS = 500
#: files whose Parquet footers the detail page reads for the partitions' row counts
FOOTER_FILES = 500
#: numeric columns the console's chart draws
CHART_SERIES = 5
EXAMPLE_SQL = "SELECT carrier, count(*) AS n FROM silver.shipments GROUP BY 1 ORDER BY 1"
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL")
_TEMPORAL = ("DATE", "TIMESTAMP", "TIME")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Lakeside:
    """The tables of the lake as one page sees them: the lake's (Parquet) and the Iceberg
    catalog's, the pipelines' table specs, and which pipeline writes which table."""

    view: View
    specs: list[TableSpec]
    parquet: list[TableInfo]
    iceberg: list[TableInfo]
    writers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, view: View) -> Lakeside:
        pairs = list(view.registry.tables())
        specs = [t for _, t in pairs]
        return cls(view, specs, discover(view.lake, specs), iceberg_tables(view.lake),
                   {t.name: p.name for p, t in pairs})

    @property
    def names(self) -> list[str]:
        return [t.name for t in (*self.parquet, *self.iceberg)]

    def find(self, name: str) -> tuple[TableInfo, bool]:
        """The table called ``name`` and whether it is an Iceberg table (404 with close names)."""
        for t in self.parquet:
            if t.name.lower() == name.lower():
                return t, False
        for t in self.iceberg:
            if t.name.lower() == name.lower():
                return t, True
        close = difflib.get_close_matches(name, self.names, n=5, cutoff=0.5)
        hint = f"close names: {', '.join(close)}" if close else f"tables: {', '.join(self.names) or 'none'}"
        raise NotFoundError(f"no table {name!r} in the lake; {hint}")

    def writer(self, name: str) -> str | None:
        """The pipeline writing table ``name`` (a ``__runs`` view: its promoted table's)."""
        return self.writers.get(name.removesuffix("__runs"))

    def connection(self) -> duckdb.DuckDBPyConnection:
        """One connection with the view of every Parquet table (see :meth:`select`)."""
        return connect(self.view.lake, self.specs, scope=self._scope(iceberg=False))

    def _scope(self, *, iceberg: bool) -> Scope:
        return Scope(None, self.specs, self.parquet, iceberg and has_iceberg(self.view.lake))

    def select(self, con: duckdb.DuckDBPyConnection, sql: str, *, iceberg: bool) -> duckdb.DuckDBPyRelation:
        """A DuckDB ``sql`` statement of this page over ``con``, planned as ``lakeline sql`` plans
        it (``iceberg``: it names an Iceberg table, whose scan is planned, time travel too) but
        without the ``max_bytes`` guard: the page's own statements read counts and samples."""
        sc = self._scope(iceberg=iceberg)
        rel = Query(self.view.lake, sql, "duckdb", lambda: self.specs, con, sc).relation(None, None)
        assert rel is not None, sql  # a SELECT has rows
        return rel


def _specs(view: View) -> list[TableSpec]:
    """The pipelines' table specs (they name the tables of promoted runs)."""
    return [t for _, t in view.registry.tables()]


def ident(name: str) -> str:
    """``schema.table`` as SQL (parts quoted when they are not plain identifiers)."""
    return ".".join(part if _PLAIN.fullmatch(part) else '"' + part.replace('"', '""') + '"'
                    for part in name.split(".", 1))


def human_bytes(n: int | None) -> str:
    """``75.8 kB`` for 75,836 bytes (decimal units, as ``ls -h --si``)."""
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def cell(value: Any) -> Any:
    """A value as the pages show it and JSON carries it: numbers stay numbers, None stays None,
    dates and times as ISO text, nested values as JSON, anything else as its text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | clock):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def kind(sql_type: str) -> str:
    """``number``, ``temporal`` or ``text``: how a DuckDB column type is charted."""
    upper = sql_type.upper()
    if upper.startswith(_NUMERIC):
        return "number"
    if upper.startswith(_TEMPORAL):
        return "temporal"
    return "text"


# ---- the tables ------------------------------------------------------------------------------


@page("tables", "/tables", title="Tables")
def index(view: View) -> Rendered:
    """Every table with its format, rows, size and files; then the SQL models."""
    side = Lakeside.read(view)
    con = side.connection()
    rows: list[dict[str, Any]] = []
    try:
        for t, iceberg in [(t, False) for t in side.parquet] + [(t, True) for t in side.iceberg]:
            count, error = _count(side, con, t.name, iceberg=iceberg)
            rows.append({"name": t.name, "format": "Iceberg" if iceberg else "Parquet dataset", "rows": count,
                         "error": error, "files": t.files, "bytes": t.bytes, "size": human_bytes(t.bytes),
                         "location": t.location, "pipeline": side.writer(t.name)})
    finally:
        con.close()
    models = _models(view, side.specs)
    built = {f"gold.{md['name']}": md["name"] for md in models}
    for r in rows:
        r["model"] = built.get(r["name"])
    names = {r["name"] for r in rows}
    for md in models:
        md["table"] = f"gold.{md['name']}" if f"gold.{md['name']}" in names else None
    return "tables.html", {"title": "Tables", "tables": rows, "models": models}


def _count(side: Lakeside, con: duckdb.DuckDBPyConnection, name: str, *, iceberg: bool,
           travel: str = "") -> tuple[int | None, str | None]:
    """The rows of table ``name`` (``travel``: a ``FOR VERSION AS OF`` clause), or its error."""
    import duckdb  # heavy: DuckDB (the connection has loaded it; named for its errors)

    try:
        rows, _ = head(side.select(con, f"SELECT count(*) FROM {ident(name)}{travel}", iceberg=iceberg), 1)
    except (duckdb.Error, LakelineError) as exc:
        return None, str(exc)
    return int(rows[0][0]), None


def _models(view: View, specs: Sequence[TableSpec]) -> list[dict[str, Any]]:
    """``lakeline models list`` (every model file, its status and rows)."""
    from lakeline.models import model_status  # heavy: sqlglot parses the model files
    from lakeline.models.spec import model_files

    if not model_files(view.lake.settings.home):
        return []  # (checking the models lists the lake's tables: not for none)
    return model_status(view.lake, specs)


# ---- one table -------------------------------------------------------------------------------


def _every_table(view: View) -> Iterable[dict[str, Any]]:
    return [{"name": n} for n in Lakeside.read(view).names]


@page("table", "/tables/detail", title="Table", instances=_every_table)
def detail(view: View, name: str, snapshot: str = "") -> Rendered:
    """Schema, rows, size, partitions and a sample of table ``name``; for an Iceberg table its
    snapshots, and with ``snapshot`` (an id) the rows and sample as of that snapshot."""
    side = Lakeside.read(view)
    info, iceberg = side.find(name)
    if snapshot and not iceberg:
        raise UsageError(f"{info.name} is a Parquet dataset: only Iceberg tables have snapshots")
    ctx: dict[str, Any] = {"title": info.name, "name": info.name,
                           "format": "Iceberg" if iceberg else "Parquet dataset", "location": info.location,
                           "files": info.files, "bytes": info.bytes,
                           "size": human_bytes(info.bytes), "pipeline": side.writer(info.name),
                           "snapshots": [], "snapshot": None, "spec": None}
    travel = ""
    if iceberg:
        ice = _iceberg(view, info.name, snapshot)
        ctx.update(ice)
        if ice["snapshot"] is not None:
            travel = f" FOR VERSION AS OF {ice['snapshot']['id']}"
    else:
        ctx["partitions"], ctx["partitions_note"] = _partitions(view, info, side.specs)
    con = side.connection()
    try:
        ctx["rows"], ctx["error"] = _count(side, con, info.name, iceberg=iceberg, travel=travel)
        ctx["columns"], ctx["sample"] = [], []
        if ctx["error"] is None:
            rel = side.select(con, f"SELECT * FROM {ident(info.name)}{travel} LIMIT {SAMPLE_ROWS}",
                              iceberg=iceberg)
            ctx["columns"] = [{"name": c, "type": str(t)}
                              for c, t in zip(rel.columns, rel.types, strict=True)]
            rows, _ = head(rel, SAMPLE_ROWS)
            ctx["sample"] = [[cell(v) for v in r] for r in rows]
    finally:
        con.close()
    ctx["model"] = _model_of(view, side.specs, info.name)
    return "table.html", ctx


def _iceberg(view: View, name: str, snapshot: str) -> dict[str, Any]:
    """An Iceberg table's partition spec, snapshots (oldest first), the chosen snapshot and
    the partitions (rows, files, bytes) as of it."""
    from lakeline.tables.iceberg import load_table  # heavy: pyiceberg

    table = load_table(view.lake, name)
    snaps = [_snapshot(s) for s in sorted(table.snapshots(), key=lambda s: s.timestamp_ms)]
    chosen = None
    if snapshot:
        if not snapshot.strip().isdigit():
            raise UsageError(f"snapshot must be a snapshot id (a number), not {snapshot!r}")
        chosen = next((s for s in snaps if s["id"] == int(snapshot)), None)  # an id of the table
        if chosen is None:
            raise NotFoundError(f"{name} has no snapshot {snapshot}; snapshots: "
                                f"{', '.join(str(s['id']) for s in snaps) or 'none'}")
    current = table.current_snapshot()
    parts: list[dict[str, Any]] = []
    if current is not None:
        at = int(chosen["id"]) if chosen is not None else current.snapshot_id
        for p in table.inspect.partitions(snapshot_id=at).to_pylist():
            value = "/".join(f"{k}={cell(v)}" for k, v in (p.get("partition") or {}).items())
            parts.append({"partition": value or "(unpartitioned)", "rows": p["record_count"],
                          "files": p["file_count"], "bytes": p["total_data_file_size_in_bytes"]})
    parts.sort(key=lambda p: p["partition"])
    spec = str(table.spec())
    return {"snapshots": snaps, "snapshot": chosen, "spec": spec if table.spec().fields else None,
            "current_snapshot": current.snapshot_id if current else None, "partitions": parts,
            "partitions_note": None}


def _snapshot(s: Any) -> dict[str, Any]:
    """A pyiceberg snapshot as the page lists it."""
    summary = s.summary
    return {"id": s.snapshot_id, "parent": s.parent_snapshot_id,
            "operation": str(summary.operation.value) if summary is not None else "",
            "committed_at": _iso_ms(s.timestamp_ms),
            "records": _int(summary.get("total-records")) if summary is not None else None}


def _iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat(timespec="milliseconds")


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _partitions(view: View, info: TableInfo,
                specs: Sequence[TableSpec]) -> tuple[list[dict[str, Any]], str | None]:
    """A Parquet dataset's Hive partitions (``dt=…/``): files, bytes, and rows from the files'
    footers when there are at most :data:`FOOTER_FILES` files."""
    files = table_files(view.lake, info, specs)
    promoted_view = any(t.layout == "runs" and t.name == info.name for t in specs)
    groups: dict[str, dict[str, Any]] = {}
    for zone, key, size in files:
        # the promoted view reads one run per partition: its run folder is not a partition
        segments = [s for s in key.split("/")[:-1]
                    if "=" in s and not (promoted_view and s.startswith("run_id="))]
        g = groups.setdefault("/".join(segments), {"files": 0, "bytes": 0, "rows": 0, "keys": []})
        g["files"] += 1
        g["bytes"] += size
        g["keys"].append((zone, key))
    if list(groups) == [""]:
        return [], None  # not partitioned
    note = None
    if len(files) <= FOOTER_FILES:
        for g in groups.values():
            g["rows"] = sum(_footer_rows(view, zone, key) for zone, key in g["keys"])
    else:
        note = f"{len(files):,} files: rows per partition are not counted (more than {FOOTER_FILES} footers)"
    return [{"partition": p or "(none)", "rows": None if note else g["rows"], "files": g["files"],
             "bytes": g["bytes"]} for p, g in sorted(groups.items())], note


def _footer_rows(view: View, zone: str, key: str) -> int:
    """The rows the Parquet footer of ``zone``/``key`` declares (the footer alone is read)."""
    import pyarrow.parquet as pq  # heavy: pyarrow

    fs = view.lake.store.arrow_filesystem()
    with fs.open_input_file(view.lake.store.scan_uri(zone, key).removeprefix("s3://")) as f:
        return int(pq.read_metadata(f).num_rows)


def _model_of(view: View, specs: Sequence[TableSpec], name: str) -> dict[str, Any] | None:
    """The SQL model that builds table ``name`` (``gold.<model>``), with its status, or None."""
    schema, _, table = name.partition(".")
    if schema.lower() != "gold":
        return None
    return next((m for m in _models(view, specs) if m["name"] == table), None)


@action("model-run", "/actions/model-run")
def run_model(view: View, form: dict[str, str]) -> tuple[str, str]:
    """Materialise the model ``form["model"]`` now, as ``lakeline models run NAME`` does."""
    from lakeline.models import run_models  # heavy: sqlglot parses the model files

    result = run_models(view.lake, _specs(view), only=form.get("model", ""))[0]
    if result.status == "SUCCEEDED" or result.rows is not None:  # gold.<name> exists
        return result.summary(), view.links.url("table", name=f"gold.{result.name}")
    return result.summary(), view.links.url("tables")


# ---- the SQL console --------------------------------------------------------------------------


@page("sql", "/sql", title="SQL", exported=False)
def sql(view: View, q: str = "") -> Rendered:
    """Run query ``q`` as ``lakeline sql`` does (refused over ``sql.max_bytes`` before it runs):
    the first :data:`SQL_ROWS` rows as a table, and a chart when the result has a label and a
    number. A failing query shows its error (status 400)."""
    ctx: dict[str, Any] = {"title": "SQL", "q": q, "example": EXAMPLE_SQL, "error": None, "result": None,
                           "max_bytes": view.lake.settings.sql.max_bytes}
    if not q.strip():
        return "sql.html", ctx
    started = time.perf_counter()
    try:
        ctx["result"] = _run(view, q)
    except LakelineError as exc:
        ctx["error"], ctx["http_status"] = str(exc), 400
        return "sql.html", ctx
    ctx["result"]["elapsed_ms"] = round((time.perf_counter() - started) * 1000)
    return "sql.html", ctx


def _run(view: View, query: str) -> dict[str, Any]:
    """The columns, first rows and chart of ``query``."""
    prefix, body = split_explain(query)
    # a plan reads nothing: EXPLAIN is not refused over max_bytes (EXPLAIN ANALYZE runs the query)
    max_bytes = 0 if prefix == "EXPLAIN" else None
    # a GET runs it: statements that change things (COPY, CREATE, SET …) are `lakeline sql`'s
    q, rel = bind_query(view.lake, body, lambda: _specs(view), prefix=prefix, max_bytes=max_bytes,
                        queries_only=True)
    try:
        if rel is None:
            return {"columns": [], "rows": [], "more": False, "chart": None}
        columns = [{"name": c, "type": str(t), "kind": kind(str(t))} for c, t in zip(rel.columns, rel.types,
                                                                                     strict=True)]
        rows, more = head(rel, SQL_ROWS)
    finally:
        q.con.close()
    return {"columns": columns, "rows": [[cell(v) for v in r] for r in rows], "more": more,
            "chart": chart(columns, rows)}


def chart(columns: Sequence[dict[str, Any]], rows: Sequence[Sequence[Any]]) -> dict[str, Any] | None:
    """What the console draws of a result (``rows``: DuckDB's values; None: nothing to draw).
    A line when the first column is a date, time or number in ascending order; a bar when it is
    text (or an unordered date); one series per numeric column after it (at most
    :data:`CHART_SERIES`)."""
    if len(columns) < 2 or not rows:
        return None
    series = [i for i, c in enumerate(columns) if i > 0 and c["kind"] == "number"][:CHART_SERIES]
    if not series:
        return None
    first = columns[0]["kind"]
    if first in ("temporal", "number") and _ascending([r[0] for r in rows]):
        shape = "line"
    elif first in ("text", "temporal"):
        shape = "bar"
    else:
        return None
    return {"type": shape, "labels": ["NULL" if r[0] is None else str(cell(r[0])) for r in rows],
            "datasets": [{"label": columns[i]["name"], "data": [_number(r[i]) for r in rows]}
                         for i in series]}


def _ascending(values: Sequence[Any]) -> bool:
    """True when ``values`` (no NULL) never go down."""
    try:
        return None not in values and all(a <= b for a, b in itertools.pairwise(values))
    except TypeError:  # values that do not compare (mixed types)
        return False


def _number(value: Any) -> float | None:
    """A numeric value for the chart (None for NULL, NaN and infinities: JSON has none)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
