"""Materialise models into gold: each due model's query becomes the one file ``gold/NAME/data.parquet``.

::

    HOME/models/*.sql ─ discover ─ plan (check, order) ─┬─ up to date ─────────▶ SKIPPED
                                                        ├─ an input model failed ▶ SKIPPED
                                                        └─ due ─ COPY (query) TO work file
                                                               ├─ error ─▶ FAILED (old file stays)
                                                               └─ put_file(move) ─▶ SUCCEEDED
                                                                  state item, lineage node

**Due.** A model runs when it never ran, its last attempt failed, its SQL changed, its gold
file is missing, the fingerprint of one of its inputs changed since its last successful
materialisation (:mod:`lakeline.models.inputs`), or a model it reads was materialised again in
the same call; ``force`` runs every model, ``only`` runs that one model, forced. Up-to-date
models are returned too, SKIPPED with the reason ``up to date``.

**Atomic replace.** DuckDB writes the whole result to a scratch file first; the file then
replaces ``gold/NAME/data.parquet`` as one object (a rename locally, one PUT on S3), so a reader
sees the old table or the new one, never a mix. A failing model leaves the old file untouched
and does not stop the others; the models that read it are SKIPPED.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lakeline import log
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.lineage.hooks import enabled, guarded, location, maybe_export, node_id
from lakeline.models.inputs import STATE_TABLE, fingerprint, iceberg_names, known_tables, model_key
from lakeline.models.plan import plan
from lakeline.models.spec import Model, discover
from lakeline.ports.lineage_model import derived_id, now_iso
from lakeline.ports.state import Item
from lakeline.sql import connect, plan_query
from lakeline.tables.schema import TableSpec

Status = Literal["SUCCEEDED", "FAILED", "SKIPPED"]
#: the lineage action of one materialisation.
ACTION = "MODEL_MATERIALISED"
UP_TO_DATE = "up to date"
_log = log.get("models")


@dataclass
class ModelResult:
    """What happened to one model in a call of :func:`run_models`.

    ``rows``: the rows written (SUCCEEDED); otherwise the rows ``gold.NAME`` still holds from its
    last materialisation (None when it never had one). ``reason``: why it ran or was skipped."""

    name: str
    status: Status
    rows: int | None = None
    inputs: tuple[str, ...] = ()
    error: str | None = None
    location: str = ""
    elapsed_s: float = 0.0
    reason: str | None = None
    materialised_at: str | None = None

    def summary(self) -> str:
        """One line for a person."""
        table = f"gold.{self.name}"
        if self.status == "SUCCEEDED":
            return (f"model {self.name}: {_rows(self.rows)} into {table} "
                    f"(inputs {', '.join(self.inputs) or 'none'})")
        if self.status == "FAILED":
            return f"model {self.name} FAILED: {self.error} ({table} keeps its previous data)"
        held = f"{table} holds {_rows(self.rows)}" if self.rows is not None else f"no {table} yet"
        return f"model {self.name} skipped: {self.reason} ({held})"

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON types."""
        return {"name": self.name, "status": self.status, "rows": self.rows, "inputs": list(self.inputs),
                "error": self.error, "location": self.location, "elapsed_s": self.elapsed_s,
                "reason": self.reason, "materialised_at": self.materialised_at}


#: how a model's result becomes the Parquet file ``work``: returns its rows (DuckDB: :func:`_write`)
Writer = Callable[[Lake, Sequence[TableSpec], Model, Path], int]


def run_models(lake: Lake, tables: Sequence[TableSpec] = (), *, only: str | None = None,
               force: bool = False, writer: Writer | None = None) -> list[ModelResult]:
    """Materialise the due models of ``lake.settings.home/models`` in dependency order.

    ``tables``: the pipelines' table specs (see :func:`lakeline.sql.connect`). ``only``: run
    just that model, forced (:class:`UsageError` when there is no such model). Raises
    :class:`ConfigError` when any model file is bad (nothing runs then). Returns one result per
    model run or skipped (with ``only``: that one). ``writer``: who computes a model's result
    (default DuckDB here; :func:`lakeline.aws.models.athena_writer` runs it on Athena); the result
    replaces ``gold/NAME/data.parquet`` the same way either way."""
    models = discover(lake.settings.home)
    if only is not None and only not in {m.name for m in models}:
        raise UsageError(f"no model {only!r}; models: {', '.join(m.name for m in models) or 'none'} "
                         f"(files {lake.settings.home / 'models'}/NAME.sql)")
    if not models:
        return []
    iceberg = iceberg_names(lake)
    ordered = plan(models, known_tables(lake, tables, models, iceberg))
    names = {m.name for m in models}
    specs = {t.name: t for t in tables}
    fresh: set[str] = set()  # models materialised again in this call
    blocked: dict[str, str] = {}  # model → why the models reading it are skipped
    results: list[ModelResult] = []
    for m in ordered:
        if only is not None and m.name != only:
            continue
        item = lake.state.get(STATE_TABLE, m.name)
        previous = item.data if item is not None else {}
        base = ModelResult(m.name, "SKIPPED", previous.get("rows"), m.inputs,
                           location=location(lake, "gold", model_key(m.name)),
                           materialised_at=previous.get("materialised_at"))
        upstream = [t for t in m.inputs if t.startswith("gold.") and t.removeprefix("gold.") in blocked]
        if upstream and only is None:
            up = upstream[0].removeprefix("gold.")
            base.reason = f"input model {up} {blocked[up]}"
            blocked[m.name] = "was skipped"
            results.append(base)
            continue
        prints = {t: fingerprint(lake, t, models=names, specs=specs, iceberg=iceberg) for t in m.inputs}
        forced = "forced" if force else "asked for by name" if only == m.name else None
        base.reason = forced or _why_due(lake, m, item, prints, fresh)
        if base.reason is None:
            base.reason = UP_TO_DATE
            results.append(base)
            continue
        result = _materialise(lake, tables, m, prints, previous, base, writer or _write)
        if result.status == "SUCCEEDED":
            fresh.add(m.name)
        else:
            blocked[m.name] = "failed"
        results.append(result)
    return results


def _why_due(lake: Lake, m: Model, item: Item | None, prints: dict[str, Any], fresh: set[str]) -> str | None:
    """Why ``m`` must run now, or None when its table is up to date."""
    data = item.data if item is not None else {}
    if not data.get("materialised_at"):
        return "never materialised"
    if data.get("status") != "SUCCEEDED":
        return "its last attempt failed"
    if data.get("sql_sha256") != m.sql_sha256:
        return "its SQL changed"
    if not lake.store.exists("gold", model_key(m.name)):
        return f"{m.table} is missing"
    upstream = [t for t in m.inputs if t.startswith("gold.") and t.removeprefix("gold.") in fresh]
    if upstream:
        return f"input model {upstream[0].removeprefix('gold.')} was materialised again"
    old = data.get("fingerprints") or {}
    changed = [t for t in m.inputs if old.get(t) != prints[t]]
    return f"input {changed[0]} changed" if changed else None


def _materialise(lake: Lake, tables: Sequence[TableSpec], m: Model, prints: dict[str, Any],
                 previous: dict[str, Any], result: ModelResult, writer: Writer) -> ModelResult:
    """Run ``m`` into its gold file and record the outcome (state item, lineage)."""
    started = time.monotonic()
    work = lake.work_dir / f"model-{m.name}-{uuid.uuid4().hex}.parquet"
    try:
        rows = writer(lake, tables, m, work)
        info = lake.store.put_file("gold", model_key(m.name), work, move=True)
    except Exception as exc:  # any failure of one model is its own: the others go on
        work.unlink(missing_ok=True)
        result.status, result.elapsed_s = "FAILED", round(time.monotonic() - started, 3)
        result.error = _first_line(exc)
        # a user's SQL error is no crash of lakeline: the traceback only at debug level
        _log.warning("model %s failed: %s", m.name, result.error)
        _log.debug("model %s failed", m.name, exc_info=True)
        lake.state.put(STATE_TABLE, m.name, dict(previous, status="FAILED", error=result.error,
                                                 attempted_at=now_iso(), inputs=list(m.inputs)))
        return result
    at = now_iso()
    result.status, result.rows, result.materialised_at = "SUCCEEDED", rows, at
    result.elapsed_s = round(time.monotonic() - started, 3)
    lake.state.put(STATE_TABLE, m.name, {
        "status": "SUCCEEDED", "error": None, "rows": rows, "materialised_at": at, "attempted_at": at,
        "fingerprints": prints, "inputs": list(m.inputs), "sql_sha256": m.sql_sha256, "etag": info.etag,
        "elapsed_s": result.elapsed_s})
    _log.info("model %s: %d rows into %s", m.name, rows, m.table)
    _record_lineage(lake, m, rows, at)
    return result


def _write(lake: Lake, tables: Sequence[TableSpec], m: Model, work: Path) -> int:
    """Write ``m``'s result to the Parquet file ``work``; returns its rows."""
    # a connection per model: a model reading gold.<other> must see the file <other> just wrote
    con = connect(lake, tables)
    try:
        query, _ = plan_query(lake, con, m.query, tables=tables)
        target = str(work).replace("'", "''")
        # the newline ends a trailing "-- comment" of the query before the closing parenthesis
        row = con.execute(f"COPY (\n{query}\n) TO '{target}' (FORMAT parquet, COMPRESSION zstd)").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def _first_line(exc: BaseException) -> str:
    """An error as one line (DuckDB adds the query with a caret below its message)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def root_id(name: str, materialised_at: str) -> str:
    """The lineage root of one materialisation of model ``name``."""
    return derived_id("model", name, materialised_at)


def _record_lineage(lake: Lake, m: Model, rows: int, materialised_at: str) -> None:
    """One root per materialisation, with one ``MODEL_MATERIALISED`` node (never fails the model)."""
    if not enabled(lake):
        return
    root = root_id(m.name, materialised_at)
    with guarded("model materialised", root, lake):
        lake.lineage.record(root, root, ACTION, location(lake, "gold", model_key(m.name)),
                            node_id=node_id(root, ACTION),
                            attrs={"model": m.name, "inputs": list(m.inputs), "rows": rows,
                                   "sql_sha256": m.sql_sha256})
    maybe_export(lake, root)


def _rows(n: int | None) -> str:
    return "1 row" if n == 1 else f"{n} rows"
