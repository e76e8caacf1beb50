"""Table sinks: one interface for writing batches to a Parquet dataset or an Iceberg table.

A *batch* is the unit of exactly-once: a chunk of a landed object, a retail orders file. Its
id is fixed by what it came from, so a redelivered batch is recognised:

* :class:`ParquetDatasetSink` — Hive-partitioned files (``<prefix>/dt=<day>/``) named by the
  batch (``part-<batch>[-n].parquet``). Writing a batch again writes the same names and deletes
  any other file of that batch in its partitions: the batch is *replaced*, never doubled.
* :class:`IcebergSink` — one snapshot per batch, tagged with the batch id
  (:func:`lakeline.tables.iceberg.append_batch`); a batch already in the table's history is
  found and not appended again. The catalog is the lake's (:attr:`lakeline.lake.Lake.catalog`:
  SQL on SQLite locally, Glue on AWS).

The transform writes through :func:`open_sink` and never asks which format a table has.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.tables import iceberg
from lakeline.tables.schema import TableSpec

if TYPE_CHECKING:
    import pyarrow as pa

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
    def partitions(self) -> list[str]:
        """The partition values holding data (``2026-01-05`` for ``dt``), sorted."""

    @property
    def location(self) -> str:
        """Where the table's data lives (a path or a URI)."""
        return self.lake.store.scan_uri(self.spec.zone, self.spec.prefix)


class ParquetDatasetSink(TableSink):
    """A Hive-partitioned Parquet dataset under ``<zone>/<prefix>/``."""

    def write_batch(self, batch_id: str, batch: Batch) -> WriteResult:
        import pyarrow.parquet as pq  # heavy: Arrow's Parquet module

        files = batch.files
        if files is None:
            files = self._write_table(batch_id, batch)
        out = WriteResult()
        store, zone = self.lake.store, self.spec.zone
        for part, produced in sorted(files.items(), key=lambda kv: kv[0] or ""):
            if not produced:
                continue
            prefix = f"{self.spec.prefix}/" + (f"{self.spec.partition}={part}/" if part is not None else "")
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

    def _write_table(self, batch_id: str, batch: Batch) -> dict[str | None, list[Path]]:
        import pyarrow.compute as pc  # heavy: Arrow
        import pyarrow.parquet as pq

        assert batch.table is not None
        work = self.lake.work_dir / f"sink-{batch_id.replace('/', '_')}"
        work.mkdir(parents=True, exist_ok=True)
        col = self.spec.partition
        table = batch.table
        if col is None or col not in table.column_names:
            path = work / "data.parquet"
            pq.write_table(table, path, compression="zstd")
            return {None: [path]}
        out: dict[str | None, list[Path]] = {}
        values = pc.unique(table.column(col))
        for value in values:
            part = table.filter(pc.equal(table.column(col), value)).drop_columns([col])
            path = work / f"{col}={value}.parquet"
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
    """An Iceberg table in the lake's catalog, partitioned by ``day(<time field>)``."""

    def __init__(self, lake: Lake, spec: TableSpec, *, time_field: str | None = None) -> None:
        super().__init__(lake, spec)
        self.time_field = time_field

    def write_batch(self, batch_id: str, batch: Batch) -> WriteResult:
        import pyarrow as pa  # heavy: Arrow
        import pyarrow.parquet as pq

        if batch.table is not None:
            data = batch.table
        else:
            assert batch.files is not None
            data = pa.concat_tables([pq.read_table(p) for ps in batch.files.values() for p in ps])
        by_day = self.time_field is not None and self.time_field in data.column_names
        partition = [(str(self.time_field), "day")] if by_day else []
        iceberg.ensure_table(self.lake, self.spec.name, data.schema, partition)
        added = iceberg.append_batch(self.lake, self.spec.name, data, batch_id)
        rows: dict[str | None, int] = dict(batch.rows) if batch.rows else {None: data.num_rows}
        return WriteResult(rows=rows if added.appended else {k: 0 for k in rows},
                           files=[f"iceberg:{self.spec.name}"], files_by_partition={k: 1 for k in rows},
                           snapshot_id=added.snapshot_id, appended=added.appended)

    def partitions(self) -> list[str]:
        try:
            table = iceberg.load_table(self.lake, self.spec.name)
        except Exception:  # no such table yet: nothing written
            return []
        found = {str(next(iter(t.file.partition.__dict__.values()), "")) for t in table.scan().plan_files()}
        return sorted(found)

    @property
    def location(self) -> str:
        return f"iceberg:{self.spec.name}"


def open_sink(lake: Lake, spec: TableSpec, *, time_field: str | None = None) -> TableSink:
    """The sink of a table by its layout (``parquet`` or ``iceberg``)."""
    if spec.layout == "parquet":
        return ParquetDatasetSink(lake, spec)
    if spec.layout == "iceberg":
        return IcebergSink(lake, spec, time_field=time_field)
    raise UsageError(f"table {spec.name}: no sink writes the {spec.layout!r} layout")


__all__ = ["Batch", "IcebergSink", "ParquetDatasetSink", "TableSink", "WriteResult", "open_sink"]
