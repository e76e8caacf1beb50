"""SQL over the lake with DuckDB.

Every directory of Parquet files directly under the ``silver`` and ``gold`` zones is a table
named ``<zone>.<directory>`` (``silver.shipments``), except lakeline's own scratch (:data:`INTERNAL`,
``_…`` folders); Hive partitions (``dt=…``) become columns.
Rejects of every pipeline are ``quarantine.rejects``.

Tables of promoted runs are different (a pipeline declares them with the ``runs`` layout,
like ``silver.transactions``): ``silver.<name>`` reads only the promoted run of each partition,
resolved through ``_LATEST.json`` (never a mix of runs), and ``silver.<name>__runs`` reads every
complete or incomplete run folder, with ``run_id``. Callers pass those tables' specs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeline.duck import duckdb_connection
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.sql_names import named_tables, referenced_tables
from lakeline.stages.rejects import REJECT_COLUMNS

if TYPE_CHECKING:
    import duckdb

    from lakeline.tables.schema import TableSpec

#: where the pipelines' table specs come from (loaded only when a query needs them)
SpecLoader = Callable[[], Sequence["TableSpec"]]

TABLE_ZONES = ("silver", "gold")
#: the SQL schemas of the lake's own tables (any other schema is an Iceberg namespace)
LAKE_SCHEMAS = (*TABLE_ZONES, "quarantine")
#: directories of a zone that hold lakeline's own files, not tables (unless a pipeline's table
#: spec names them): the Iceberg warehouse, and the carbon workflow's staged batches
#: (``silver/transformed/<root id>/part_N.parquet``, the input of its calculate step).
INTERNAL = {"silver": frozenset({"iceberg", "transformed"}), "gold": frozenset()}


@dataclass(frozen=True)
class TableInfo:
    """A queryable table and where its files are."""

    name: str
    location: str
    files: int
    bytes: int


def _promoted(tables: Sequence[TableSpec]) -> dict[str, str]:
    return {t.table: t.prefix for t in tables if t.layout == "runs"}


def discover(lake: Lake, tables: Sequence[TableSpec] = ()) -> list[TableInfo]:
    """Tables present in the lake, by name (``tables``: the pipelines' table specs, which name
    the tables of promoted runs)."""
    from lakeline.promotion.promote import current_files  # only for promoted tables (a query's scope)

    promoted = _promoted(tables)
    batch_roots = {prefix.split("/", 1)[0] for prefix in promoted.values()}
    declared = {(t.zone, t.prefix.split("/", 1)[0]) for t in tables if t.layout == "parquet"}
    found: dict[str, list[int]] = {}
    locations: dict[str, str] = {}
    skipped: set[str] = set()
    for zone in TABLE_ZONES:
        for info in lake.store.list(zone):
            if not info.key.endswith(".parquet") or "/" not in info.key:
                continue
            table = info.key.split("/", 1)[0]
            internal = table in INTERNAL[zone] and (zone, table) not in declared
            if table.startswith((".", "_")) or internal or (zone == "silver" and table in batch_roots):
                continue
            if "/run_id=" in info.key and (zone, table) not in declared:
                # run folders (and their current/) are a promoted table's, read through its spec:
                # one glob over them would mix runs (a caller without the specs gets no view)
                skipped.add(f"{zone}.{table}")
                continue
            name = f"{zone}.{table}"
            found.setdefault(name, []).append(info.size)
            locations[name] = lake.store.scan_uri(zone, table)
    for name in skipped:
        found.pop(name, None)
    for name, prefix in promoted.items():
        listed = {i.key: i.size for i in lake.store.list("silver", prefix + "/")
                  if i.key.endswith(".parquet")}
        runs = [size for key, size in listed.items() if "/run_id=" in key]
        if runs:
            found[f"silver.{name}__runs"] = runs
            locations[f"silver.{name}__runs"] = lake.store.scan_uri("silver", prefix)
        # the promoted view: the files each partition's _LATEST.json lists (see _batch_views)
        current = [listed[k] for k in current_files(lake, prefix) if k in listed]
        if current:
            found[f"silver.{name}"] = current
            locations[f"silver.{name}"] = lake.store.scan_uri("silver", prefix)
    rejects = [i.size for i in lake.store.list("error", "rejects/") if i.key.endswith(".parquet")]
    if rejects:
        found["quarantine.rejects"] = rejects
        locations["quarantine.rejects"] = lake.store.scan_uri("error", "rejects")
    return [
        TableInfo(name, locations[name], len(sizes), sum(sizes)) for name, sizes in sorted(found.items())
    ]


def connect(
    lake: Lake, tables: Sequence[TableSpec] = (), *, threads: int = 0, scope: Scope | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per lake table (``tables``: see :func:`discover`), or,
    given a :class:`Scope`, one per table of the scope.

    Local tables are read by DuckDB directly. Tables on S3 are Arrow datasets over
    ``pyarrow.fs.S3FileSystem`` registered with DuckDB (scanned lazily, filters pushed
    down), so no DuckDB extension has to be downloaded.
    """
    con = bare_connection(threads)
    if scope is None:
        add_views(lake, con, discover(lake, tables), tables)
    else:
        add_views(lake, con, scope.tables, scope.specs, scope.names)
    return con


def bare_connection(threads: int = 0) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake's schemas and an empty ``quarantine.rejects``, no
    table views yet (see :func:`add_views`)."""
    con = duckdb_connection(threads, keep_order=True)
    for schema in LAKE_SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    # a lake without rejects still has the table, empty: a query counting rejects gets 0
    typed = zip(REJECT_COLUMNS, _REJECT_TYPES, strict=True)
    columns = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in typed)
    con.execute(f"CREATE VIEW quarantine.rejects AS SELECT {columns} WHERE false")
    return con


def add_views(
    lake: Lake, con: duckdb.DuckDBPyConnection, found: Sequence[TableInfo], tables: Sequence[TableSpec] = (),
    names: frozenset[tuple[str, str]] | None = None,
) -> None:
    """Create the views of ``found`` (from :func:`discover`), and those of the promoted tables
    of ``tables`` (only those in ``names``, when given)."""
    promoted = _promoted(tables)
    if names is not None:
        wanted = {f"{s}.{t}".lower() for s, t in names}
        promoted = {n: p for n, p in promoted.items()
                    if f"silver.{n}".lower() in wanted or f"silver.{n}__runs".lower() in wanted}
    promoted_names = {f"silver.{name}" for name in _promoted(tables)}
    for t in found:
        schema, _, table = t.name.partition(".")
        if f"{schema}.{table}".removesuffix("__runs") in promoted_names:
            continue  # batch views are built from their exact file lists below
        if t.location.startswith("s3://"):
            ds = _s3_dataset(lake, t.location)
            con.register(f"__{schema}_{table}", ds)
            source = f"__{schema}_{table}"
        else:
            glob = t.location.rstrip("/") + "/**/*.parquet"
            source = (f"read_parquet('{_escape(glob)}', hive_partitioning = true, "
                      "union_by_name = true)")
        con.execute(f'CREATE OR REPLACE VIEW {schema}."{table}" AS SELECT * FROM {source}')
    _batch_views(lake, con, promoted)


@dataclass
class Scope:
    """What one query needs of the lake (see :func:`scope`): ``names`` the tables it names
    (None: every table), ``specs`` the pipelines' table specs (loaded only when a named
    table needs them), ``tables`` the lake tables to give a view, ``iceberg`` whether the
    Iceberg catalog is opened to plan the query."""

    names: frozenset[tuple[str, str]] | None
    specs: list[TableSpec]
    tables: list[TableInfo]
    iceberg: bool

    @property
    def everything(self) -> bool:
        """True when every table of the lake is opened."""
        return self.names is None


def scope(
    lake: Lake, names: frozenset[tuple[str, str]] | None, load_specs: Callable[[], Sequence[TableSpec]],
) -> Scope:
    """The :class:`Scope` of a query naming ``names`` (:func:`lakeline.sql_names.named_tables`;
    None: open everything, as :func:`connect` without a scope does).

    A named ``silver`` / ``gold`` table that is a plain folder of Parquet files is found by
    listing that folder alone; only a name that is not one (a table of promoted runs, a
    declared table in an internal folder, or no lake table) loads the pipelines' table
    specs (``load_specs``). The Iceberg catalog is opened (and pyiceberg imported) only when a
    name is still not a lake table and the lake has a catalog.
    """
    if names is None:
        every = list(load_specs())
        return Scope(None, every, discover(lake, every), has_iceberg(lake))
    found: list[TableInfo] = []
    rest: set[tuple[str, str]] = set()
    for schema, table in sorted(names):
        if schema not in LAKE_SCHEMAS:
            rest.add((schema, table))
            continue
        info = _plain_table(lake, schema, table)
        if info is not None:
            found.append(info)
        elif (schema, table.lower()) != ("quarantine", "rejects"):  # always there, maybe empty
            rest.add((schema, table))
    specs: list[TableSpec] = []
    lake_rest = {f"{s}.{t}".lower() for s, t in rest if s in LAKE_SCHEMAS}
    if lake_rest:
        specs = list(load_specs())
        for info in discover(lake, specs):
            if info.name.lower() in lake_rest:
                found.append(info)
                lake_rest.discard(info.name.lower())
    unresolved = lake_rest or any(s not in LAKE_SCHEMAS for s, _ in rest)
    return Scope(names, specs, found, bool(unresolved) and has_iceberg(lake))


def _plain_table(lake: Lake, schema: str, table: str) -> TableInfo | None:
    """``schema.table`` when it is a plain folder of Parquet files (no run folders, not one of
    lakeline's own), read without the pipelines' specs; else None."""
    if schema == "quarantine":
        if table.lower() != "rejects":
            return None
        zone, folder = "error", "rejects"
    else:
        zone, folder = schema, table
        if folder.startswith((".", "_")) or folder in INTERNAL[zone] or "/" in folder:
            return None
    sizes: list[int] = []
    for name in dict.fromkeys((folder, folder.lower())):
        for info in lake.store.list(zone, name + "/"):
            if not info.key.endswith(".parquet"):
                continue
            if "/run_id=" in info.key:
                return None  # a promoted table's runs: read through its spec
            sizes.append(info.size)
        if sizes:
            return TableInfo(f"{schema}.{name}" if schema != "quarantine" else "quarantine.rejects",
                             lake.store.scan_uri(zone, name), len(sizes), sum(sizes))
    return None


#: the SQL types of :data:`~lakeline.stages.rejects.REJECT_COLUMNS`, in order.
_REJECT_TYPES = ("VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "BIGINT", "VARCHAR",
                 "VARCHAR", "VARCHAR", "VARCHAR", "TIMESTAMPTZ")


def _batch_views(lake: Lake, con: duckdb.DuckDBPyConnection, promoted: dict[str, str]) -> None:
    if not promoted:
        return
    from lakeline.promotion.promote import current_files  # only for promoted tables (a query's scope)

    for name, prefix in promoted.items():
        runs = [i.key for i in lake.store.list("silver", prefix + "/")
                if i.key.endswith(".parquet") and "/run_id=" in i.key]
        for view, keys in ((name, current_files(lake, prefix)), (f"{name}__runs", runs)):
            if not keys:
                continue
            if lake.store.local_path("silver", keys[0]) is not None:
                paths = ", ".join(f"'{_escape(str(lake.store.local_path('silver', k)))}'" for k in keys)
                source = f"read_parquet([{paths}], hive_partitioning = true, union_by_name = true)"
            else:
                base = lake.store.scan_uri("silver", "")
                con.register(f"__silver_{view}", _s3_dataset(lake, base, [base + k for k in keys]))
                source = f"__silver_{view}"
            con.execute(f'CREATE OR REPLACE VIEW silver."{view}" AS SELECT * FROM {source}')


def _s3_dataset(lake: Lake, uri: str, files: list[str] | None = None) -> Any:
    import pyarrow.dataset as pads  # heavy: pyarrow

    fs = lake.store.arrow_filesystem()
    if files is not None:
        base = uri.removeprefix("s3://").rstrip("/")
        return pads.dataset([f.removeprefix("s3://") for f in files], filesystem=fs, format="parquet",
                            partitioning=pads.partitioning(flavor="hive"), partition_base_dir=base)
    return pads.dataset(uri.removeprefix("s3://").rstrip("/"), filesystem=fs, format="parquet",
                        partitioning="hive")


def _escape(text: str) -> str:
    return text.replace("'", "''")


def iceberg_tables(lake: Lake) -> list[TableInfo]:
    """Iceberg tables of the lake's catalog with their current data files and bytes."""
    if not has_iceberg(lake):
        return []
    cat = lake.catalog
    out = []
    for ns in cat.list_namespaces():
        for ident in cat.list_tables(ns):
            table = cat.load_table(ident)
            tasks = list(table.scan().plan_files())
            out.append(TableInfo(".".join(ident), str(table.location()), len(tasks),
                                 sum(int(t.file.file_size_in_bytes) for t in tasks)))
    return out


def has_iceberg(lake: Lake) -> bool:
    """True when the lake has an Iceberg catalog (asking the lake's catalog adapter, which
    creates none: a local lake without ``state/catalog.db`` has no Iceberg tables)."""
    return lake.has_catalog


def plan_query(
    lake: Lake, con: duckdb.DuckDBPyConnection, query: str, *, max_bytes: int | None = None,
    tables: Sequence[TableSpec] = (), scope: Scope | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Prepare ``query``: plan Iceberg scans (pruned file lists, time travel, metadata
    tables), then check the bytes it would scan against ``max_bytes`` (Parquet tables count
    whole: DuckDB prunes them itself). Returns the SQL to run and one plan per table.
    Given the query's :class:`Scope`, the Iceberg catalog is opened only when the scope says
    so, and the lake tables counted are the scope's."""
    plans: list[dict[str, Any]] = []
    if scope.iceberg if scope is not None else has_iceberg(lake):
        from lakeline.sql_iceberg import prepare  # only for a query that may name an Iceberg table
        from lakeline.tables.iceberg import catalog

        query, iceberg_plans = prepare(catalog(lake), con, query)
        plans = [p.to_dict() for p in iceberg_plans]
    found = scope.tables if scope is not None else discover(lake, tables)
    known = {t.name.lower(): t for t in found}
    for schema, table in referenced_tables(con, query):
        t = known.get(f"{schema}.{table}".lower())
        if t is not None:
            plans.append({"table": t.name, "snapshot_id": None, "row_filter": None,
                          "planned_files": t.files, "planned_bytes": t.bytes,
                          "total_files": t.files, "total_bytes": t.bytes})
    total = sum(int(p["planned_bytes"]) for p in plans)
    if max_bytes and total > max_bytes:
        detail = ", ".join(f"{p['table']}: {p['planned_bytes']} bytes" for p in plans)
        raise UsageError(
            f"query would scan {total} bytes, over the limit of {max_bytes} ({detail}); add a "
            "filter on a partition column, or raise --max-bytes / sql.max_bytes"
        )
    return query, plans


def table_files(lake: Lake, info: TableInfo, tables: Sequence[TableSpec] = ()) -> list[tuple[str, str, int]]:
    """``(zone, key, bytes)`` of the Parquet files the view of ``info`` (from :func:`discover`,
    with the same ``tables``) reads: a promoted table's current files, its ``__runs`` view's run
    folders, the rejects of the error zone, or every Parquet file under a plain table's folder."""
    from lakeline.promotion.promote import current_files  # only for promoted tables

    schema, _, table = info.name.partition(".")
    if info.name == "quarantine.rejects":
        return [("error", i.key, i.size) for i in lake.store.list("error", "rejects/")
                if i.key.endswith(".parquet")]
    promoted = _promoted(tables)
    base = table.removesuffix("__runs")
    if schema == "silver" and base in promoted:
        listed = {i.key: i.size for i in lake.store.list("silver", promoted[base] + "/")
                  if i.key.endswith(".parquet")}
        keys = ([k for k in listed if "/run_id=" in k] if table.endswith("__runs")
                else [k for k in current_files(lake, promoted[base]) if k in listed])
        return [("silver", k, listed[k]) for k in sorted(keys)]
    return sorted((schema, i.key, i.size) for i in lake.store.list(schema, table + "/")
                  if i.key.endswith(".parquet"))


def translate_query(lake: Lake, con: duckdb.DuckDBPyConnection, specs: Sequence[TableSpec], query: str,
                    dialect: str | None) -> str:
    """``query`` in DuckDB SQL (``dialect``: the caller's choice, else ``sql.dialect``)."""
    chosen = dialect or lake.settings.sql.dialect
    if chosen == "duckdb":
        return query  # nothing to translate (sql_dialect, zoneinfo & co. stay unloaded)
    from lakeline.sql_dialect import athena_aliases, translate  # heavy: sqlglot

    if chosen != "athena":
        return translate(query, chosen)
    names = [t.name for t in discover(lake, specs)]
    return translate(query, chosen, aliases=athena_aliases(lake.settings.lake.name, specs, names), con=con)


class Query:
    """One query's connection over the lake: the views of the tables it names (see
    :func:`scope`), then, if DuckDB still misses a table, every table (:meth:`widened`).
    ``load_specs`` gives the pipelines' table specs when the query needs them."""

    def __init__(self, lake: Lake, body: str, dialect: str | None, load_specs: SpecLoader,
                 con: duckdb.DuckDBPyConnection | None = None, sc: Scope | None = None) -> None:
        self.lake = lake
        self.dialect = dialect
        self.source = body
        self.load_specs = load_specs
        self.con = con or bare_connection()
        chosen = dialect or lake.settings.sql.dialect
        if sc is None:
            # Athena SQL names Glue tables: translating it needs every table and spec
            names = named_tables(body, self.con) if chosen != "athena" else None
            sc = scope(lake, names, load_specs)
            add_views(lake, self.con, sc.tables, sc.specs, sc.names)
        self.scope = sc
        self.body = translate_query(lake, self.con, sc.specs, body, dialect)

    def widened(self) -> Query:
        """The same query over a new connection with every table of the lake (what a query
        gets when it names a table the first scope did not open: DuckDB's own error then
        lists the lake's tables as it always did)."""
        sc = scope(self.lake, None, self.load_specs)
        con = connect(self.lake, sc.specs, scope=sc)
        return Query(self.lake, self.source, self.dialect, self.load_specs, con, sc)

    def plan(self, max_bytes: int | None) -> str:
        """The SQL to run (Iceberg scans planned, ``max_bytes`` checked)."""
        planned, _ = plan_query(self.lake, self.con, self.body, max_bytes=max_bytes, tables=self.scope.specs,
                                scope=self.scope)
        return planned

    def relation(self, prefix: str | None, max_bytes: int | None) -> duckdb.DuckDBPyRelation | None:
        """The query planned and bound (DuckDB's errors raised as they are)."""
        planned = self.plan(max_bytes)
        return self.con.sql(f"{prefix} {planned}" if prefix else planned)


def bind_query(lake: Lake, body: str, load_specs: SpecLoader, *, prefix: str | None = None,
               dialect: str | None = None, max_bytes: int | None = None, queries_only: bool = False,
               ) -> tuple[Query, duckdb.DuckDBPyRelation | None]:
    """``body`` (``prefix``: ``EXPLAIN`` & co., see :func:`lakeline.sql_names.split_explain`)
    planned and bound over the lake, as ``lakeline sql`` runs it: refused before it runs when it
    would scan more than ``max_bytes`` (None: ``sql.max_bytes``; 0: no limit), or, with
    ``queries_only``, when it is not a query (``COPY``, ``CREATE``, ``SET``, ``ATTACH`` … change
    things as they are bound); widened to every table when DuckDB misses one. Returns the query
    (its connection) and the relation (None for a statement without rows); a failing query
    raises :class:`UsageError` ``SQL error: …``."""
    import duckdb  # heavy: DuckDB (named for its error types)

    limit_bytes = lake.settings.sql.max_bytes if max_bytes is None else max_bytes
    try:
        q = Query(lake, body, dialect, load_specs)
        if queries_only:
            others = [st.type.name for st in q.con.extract_statements(q.body) if st.type.name != "SELECT"]
            if others:
                raise UsageError("only queries run here (SELECT, WITH … SELECT, DESCRIBE, EXPLAIN …), not "
                                 f"{', '.join(others)}: run it with `lakeline sql`")
        try:
            return q, q.relation(prefix, limit_bytes or None)
        except duckdb.CatalogException:
            if q.scope.everything:
                raise
            q = q.widened()
            return q, q.relation(prefix, limit_bytes or None)
    except duckdb.Error as exc:
        raise UsageError(f"SQL error: {exc}") from None


def head(rel: duckdb.DuckDBPyRelation, n: int) -> tuple[list[tuple[Any, ...]], bool]:
    """The first ``n`` rows of ``rel`` and whether more exist (the query runs once, for ``n + 1``
    rows); a query failing as it runs raises :class:`UsageError` ``SQL error: …``."""
    import duckdb  # heavy: DuckDB (already loaded by the query; named for its error type)

    try:
        rows = rel.limit(n + 1).fetchall()
    except duckdb.Error as exc:
        raise UsageError(f"SQL error: {exc}") from None
    return rows[:n], len(rows) > n
