"""Table sinks: one interface for writing batches to a Parquet dataset or an Iceberg table.

A *batch* is the unit of exactly-once: a chunk of a landed object, a retail orders file. Its
id is fixed by what it came from, so a redelivered batch is recognised:

* :class:`ParquetDatasetSink` — Hive-partitioned files (``<prefix>/dt=<day>/``) named by the
  batch (``part-<batch>[-n].parquet``). Writing a batch again writes the same names and deletes
  any other file of that batch in its partitions: the batch is *replaced*, never doubled. A
  batch id therefore must not end in ``-<digits>`` (``b-1`` would be file 1 of batch ``b``) nor
  hold a ``/``. The replacement covers the partitions the batch writes: batch ids are fixed by
  the content, so a redelivery carries the same partitions.
* :class:`IcebergSink` — one snapshot per batch, tagged with the batch id
  (:func:`lakeline.tables.iceberg.append_batch`); a batch already in the table's history is
  found and not appended again. The catalog is the lake's (:attr:`lakeline.lake.Lake.catalog`:
  SQL on SQLite locally, Glue on AWS).

Both list their partitions the same way (:meth:`TableSink.partitions`: ``2026-01-05`` for a
day), so a caller never needs to know how a format stores them.

The transform writes through :func:`open_sink` and never asks which format a table has.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline import reasons
from lakeline.errors import DataError, NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.sqltext import lit, quote
from lakeline.tables import iceberg
from lakeline.tables.schema import TableSpec

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

#: a file index suffix (``-1``) after the batch id: a batch id may not end like that.
_INDEX_SUFFIX = re.compile(r"-[0-9]+$")


@dataclass
class Batch:
    """What a batch holds: Parquet files already written (``files``: by partition value, None
    for an unpartitioned table) or rows in memory (``table``). ``rows`` per partition, when
    known, saves reading file footers."""

    files: dict[str | None, list[Path]] | None = None
    table: pa.Table | None = None
    rows: dict[str | None, int] | None = None


@dataclass
class WriteResult:
    """What a write did: ``rows`` by partition value, the data ``files`` (object keys, or
    ``iceberg:<table>``), the Iceberg ``snapshot_id`` and whether rows were ``appended``
    (False: the batch was there already)."""

    rows: dict[str | None, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    files_by_partition: dict[str | None, int] = field(default_factory=dict)
    snapshot_id: int | None = None
    appended: bool = True

    @property
    def total(self) -> int:
        """Rows written."""
        return sum(self.rows.values())


class TableSink(ABC):
    """A table that takes batches exactly once."""

    def __init__(self, lake: Lake, spec: TableSpec) -> None:
        self.lake = lake
        self.spec = spec

    @abstractmethod
    def write_batch(self, batch_id: str, batch: Batch) -> WriteResult:
        """Write ``batch`` under ``batch_id``; a batch written before is replaced (Parquet) or
        found (Iceberg), never added twice."""

    @abstractmethod
    def write_select(self, batch_id: str, con: duckdb.DuckDBPyConnection, select: str, params: list[Any],
                     *, rows: dict[str | None, int] | None = None) -> WriteResult:
        """Write the rows of a DuckDB query (with the partition column, when the table has one)
        as batch ``batch_id``, each sink in the form it takes best."""

    @abstractmethod
    def partitions(self) -> list[str]:
        """The partition values holding data (``2026-01-05`` for ``dt``), sorted."""

    #: True when the sink takes a batch as Parquet files partitioned like the table without
    #: reading them again (what the transform's fast path writes).
    takes_files: bool = False

    @property
    def location(self) -> str:
        """Where the table's data lives (a path or a URI)."""
        return self.lake.store.scan_uri(self.spec.zone, self.spec.prefix)


class ParquetDatasetSink(TableSink):
    """A Hive-partitioned Parquet dataset under ``<zone>/<prefix>/``."""

    takes_files = True

    def write_select(self, batch_id: str, con: duckdb.DuckDBPyConnection, select: str, params: list[Any],
                     *, rows: dict[str | None, int] | None = None) -> WriteResult:
        """DuckDB writes the files (partitioned by the table's partition column), then they are
        published as :meth:`write_batch` publishes files."""
        check_batch_id(batch_id)
        out = Path(tempfile.mkdtemp(prefix="select-", dir=self.lake.work_dir))
        try:
            col = self.spec.partition
            if col is None:
                target, partition = out / "data_0.parquet", ""
            else:
                target, partition = out, f", PARTITION_BY ({quote(col)})"
            options = f"FORMAT parquet{partition}, COMPRESSION zstd"
            con.execute(f"COPY ({select}) TO {lit(str(target))} ({options})", params)
            files: dict[str | None, list[Path]] = {None: [target]} if col is None else {
                d.name.split("=", 1)[1]: sorted(d.glob("*.parquet")) for d in sorted(out.glob(f"{col}=*"))}
            return self.write_batch(batch_id, Batch(files=files, rows=rows))
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def write_batch(self, batch_id: str, batch: Batch) -> WriteResult:
        import pyarrow.parquet as pq  # heavy: Arrow's Parquet module

        check_batch_id(batch_id)
        scratch: Path | None = None
        files = batch.files
        if files is None:
            # a directory of its own: two deliveries of one batch may be written at once
            scratch = Path(tempfile.mkdtemp(prefix="sink-", dir=self.lake.work_dir))
        try:
            if scratch is not None:
                files = self._write_table(batch, scratch)
            assert files is not None
            out = WriteResult()
            store, zone = self.lake.store, self.spec.zone
            for part, produced in sorted(files.items(), key=lambda kv: kv[0] or ""):
                if not produced:
                    continue
                folder = f"{self.spec.partition}={part}/" if part is not None else ""
                prefix = f"{self.spec.prefix}/{folder}"
                stem = f"{prefix}part-{batch_id}"
                rows = batch.rows.get(part) if batch.rows else None
                if rows is None:
                    rows = sum(pq.read_metadata(p).num_rows for p in produced)
                keys = []
                for i, path in enumerate(produced):
                    key = f"{stem}{'' if i == 0 else f'-{i}'}.parquet"
                    store.put_file(zone, key, path, move=True)
                    keys.append(key)
                for info in list(store.list(zone, stem)):  # a redelivery that wrote fewer files
                    rest = info.key.removeprefix(stem)
                    if info.key not in keys and re.fullmatch(r"(-[0-9]+)?\.parquet", rest):
                        store.delete(zone, info.key)
                out.rows[part] = rows
                out.files.extend(keys)
                out.files_by_partition[part] = len(keys)
            return out
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

    def _write_table(self, batch: Batch, work: Path) -> dict[str | None, list[Path]]:
        import pyarrow.compute as pc  # heavy: Arrow
        import pyarrow.parquet as pq

        assert batch.table is not None
        col = self.spec.partition
        table = batch.table
        if col is None or col not in table.column_names:
            path = work / "data.parquet"
            pq.write_table(table, path, compression="zstd")
            return {None: [path]}
        column = table.column(col)
        if column.null_count:  # the filters below would drop those rows without a word
            raise DataError(f"{self.spec.name}: {column.null_count} rows have no {col!r} value",
                            reasons.NULL_VALUE_ERROR)
        out: dict[str | None, list[Path]] = {}
        for i, value in enumerate(pc.unique(column)):
            part = table.filter(pc.equal(column, value)).drop_columns([col])
            path = work / f"part-{i}.parquet"  # not named by the value: it may hold any character
            pq.write_table(part, path, compression="zstd")
            out[str(value.as_py())] = [path]
        return out

    def partitions(self) -> list[str]:
        col = self.spec.partition
        if col is None:
            return []
        found = set()
        for info in self.lake.store.list(self.spec.zone, f"{self.spec.prefix}/{col}="):
            rest = info.key.removeprefix(f"{self.spec.prefix}/{col}=")
            if info.key.endswith(".parquet") and "/" in rest:
                found.add(rest.split("/", 1)[0])
        return sorted(found)


class IcebergSink(TableSink):
    """An Iceberg table in the lake's catalog.

    Partitioned by ``day(<time_field>)`` when the rows have the time field, else by the table's
    partition column (``spec.partition``: ``day`` for a date or timestamp, ``identity``
    otherwise), else not at all. The partition column stays a column of the table (Iceberg
    partitions are hidden); rows given as Parquet files by partition get it back from the
    partition value when the files lack it.
    """

    def __init__(self, lake: Lake, spec: TableSpec, *, time_field: str | None = None) -> None:
        super().__init__(lake, spec)
        self.time_field = time_field

    def write_select(self, batch_id: str, con: duckdb.DuckDBPyConnection, select: str, params: list[Any],
                     *, rows: dict[str | None, int] | None = None) -> WriteResult:
        """The rows as Arrow (a relation's result is not copied again), appended as one
        snapshot. With a time field the day partition comes from it: the query's partition
        column would only repeat it."""
        data = con.sql(select, params=params).to_arrow_table()
        col = self.spec.partition
        repeated = col is not None and col in data.column_names and col != self.time_field
        if self.time_field is not None and repeated:
            data = data.drop_columns([col])
        return self.write_batch(batch_id, Batch(table=data, rows=rows))

    def write_batch(self, batch_id: str, batch: Batch) -> WriteResult:
        data = self._rows(batch)
        partition = self._partition_by(data)
        iceberg.ensure_table(self.lake, self.spec.name, data.schema, partition)
        added = iceberg.append_batch(self.lake, self.spec.name, data, batch_id)
        rows = dict(batch.rows) if batch.rows else _count_by(data, partition[0][0] if partition else None)
        return WriteResult(rows=rows if added.appended else {k: 0 for k in rows},
                           files=[f"iceberg:{self.spec.name}"], files_by_partition={k: 1 for k in rows},
                           snapshot_id=added.snapshot_id, appended=added.appended)

    def _rows(self, batch: Batch) -> pa.Table:
        import pyarrow as pa  # heavy: Arrow
        import pyarrow.parquet as pq

        if batch.table is not None:
            return batch.table
        assert batch.files is not None
        col = self.spec.partition
        parts = []
        for part, paths in batch.files.items():
            for path in paths:
                t = pq.read_table(path)
                if col is not None and part is not None and col not in t.column_names:
                    # Hive-style files keep the partition value in the path, not in the rows
                    t = t.append_column(col, pa.array([part] * t.num_rows, pa.string()))
                parts.append(t)
        if not parts:
            raise UsageError(f"table {self.spec.name}: a batch of Parquet files needs at least one file")
        return pa.concat_tables(parts, promote_options="default")

    def _partition_by(self, data: pa.Table) -> list[tuple[str, str]]:
        """The table's ``(column, transform)`` partitioning for rows like ``data``."""
        import pyarrow as pa  # heavy: Arrow

        if self.time_field is not None and self.time_field in data.column_names:
            return [(self.time_field, "day")]
        col = self.spec.partition
        if col is None or col not in data.column_names:
            return []
        kind = data.schema.field(col).type
        return [(col, "day" if pa.types.is_date(kind) or pa.types.is_timestamp(kind) else "identity")]

    def partitions(self) -> list[str]:
        if not self.lake.has_catalog:  # asking must not create the local catalog database
            return []
        try:
            table = iceberg.load_table(self.lake, self.spec.name)
        except NotFoundError:  # not written yet
            return []
        specs, schema = table.specs(), table.schema()
        found = set()
        for task in table.scan().plan_files():
            spec = specs[task.file.spec_id]
            if not spec.fields:
                continue
            types = spec.partition_type(schema).fields
            # the record holds transform results (days since 1970-01-01 for day): render them
            found.add("/".join(
                f.transform.to_human_string(types[i].field_type, task.file.partition[i])
                for i, f in enumerate(spec.fields)))
        return sorted(found)

    @property
    def location(self) -> str:
        return f"iceberg:{self.spec.name}"


def check_batch_id(batch_id: str) -> None:
    """:class:`UsageError` unless ``batch_id`` can name a Parquet dataset sink's files: not
    empty, no ``/``, not ending in ``-<digits>`` (the index suffix of a batch's further files)."""
    if not batch_id or "/" in batch_id or _INDEX_SUFFIX.search(batch_id):
        raise UsageError(f"batch id {batch_id!r}: must be non-empty, hold no '/' and not end in "
                         "'-<digits>' (that suffix numbers a batch's files)")


def _count_by(data: pa.Table, column_name: str | None) -> dict[str | None, int]:
    """Rows of ``data`` by partition value as :meth:`TableSink.partitions` spells it."""
    import pyarrow as pa  # heavy: Arrow
    import pyarrow.compute as pc

    if column_name is None or data.num_rows == 0:
        return {None: data.num_rows}
    column = data.column(column_name)
    if pa.types.is_timestamp(column.type):  # Iceberg takes instants in UTC only: the UTC day
        column = column.cast(pa.date32())
    counts = pc.value_counts(column)
    return {(None if v is None else str(v)): int(n or 0) for v, n in zip(
        counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)}


def open_sink(lake: Lake, spec: TableSpec, *, time_field: str | None = None) -> TableSink:
    """The sink of a table by its layout (``parquet`` or ``iceberg``)."""
    if spec.layout == "parquet":
        return ParquetDatasetSink(lake, spec)
    if spec.layout == "iceberg":
        return IcebergSink(lake, spec, time_field=time_field)
    raise UsageError(f"table {spec.name}: no sink writes the {spec.layout!r} layout")


__all__ = ["Batch", "IcebergSink", "ParquetDatasetSink", "TableSink", "WriteResult", "check_batch_id",
           "open_sink"]
