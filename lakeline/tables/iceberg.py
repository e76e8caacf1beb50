"""Apache Iceberg tables through pyiceberg: the catalog of a lake and exactly-once appends.

Catalog
    The lake's (:attr:`lakeline.lake.Lake.catalog`, picked by ``Lake.open`` and opened on first
    use). ``local``: pyiceberg's SQL catalog on SQLite (``<home>/state/catalog.db``), warehouse
    ``file://<home>/zones/silver/iceberg``. ``aws``: the Glue Data Catalog (``aws.region``,
    ``aws.endpoint_url`` for both Glue and S3; credentials from the usual boto/Arrow chain),
    warehouse ``s3://<silver bucket>/<silver prefix>iceberg``.

Exactly-once appends
    Every append made by :func:`append_batch` records ``lakeline.batch-id`` in its snapshot
    summary. Before writing, the current snapshot's ancestry is searched for the batch id; a
    batch that already landed (a redelivered message, a rerun after a crash between the data
    write and the catalog commit, a commit whose response was lost) is reported with
    ``appended=False`` and not written again. Commit conflicts (another writer committed first:
    :class:`~pyiceberg.exceptions.CommitFailedException`) are retried here — after a refresh
    and a new batch-id check — with exponential backoff and jitter, so two deliveries of the
    same batch racing each other still produce one snapshot. Tables created by
    :func:`ensure_table` set ``commit.retry.num-retries=0`` so pyiceberg's own rebase-retry
    (which cannot know about batch ids) does not run behind our back.

    The batch ids live in the snapshot history: :func:`~lakeline.tables.maintenance.expire_snapshots`
    forgets them, so keep snapshots longer than any redelivery can arrive (queue retention).

    A crash between the data-file write and the commit leaves unreferenced data/manifest files;
    they are invisible to readers and removed by
    :func:`~lakeline.tables.maintenance.remove_orphan_files`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeline import reasons
from lakeline.errors import ConfigError, DataError, TransientError
from lakeline.faults import crash_point
from lakeline.lake import Lake

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

BATCH_ID_PROPERTY = "lakeline.batch-id"
TRANSFORMS = ("identity", "day", "month", "year")
MAX_COMMIT_ATTEMPTS = 20
#: Properties of tables created by :func:`ensure_table`.
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "0",  # lakeline retries (with a batch-id check) itself
    "format-version": "2",
}


@dataclass(frozen=True)
class AppendResult:
    """Outcome of :func:`append_batch`.

    ``snapshot_id`` is the snapshot that holds the batch (new or found), None only for an
    empty append that made no snapshot; ``appended`` is False when the batch had already
    landed; ``rows`` is the number of rows this call added.
    """

    snapshot_id: int | None
    appended: bool
    rows: int


# ---- catalog ----------------------------------------------------------------------------

def warehouse(lake: Lake) -> str:
    """The warehouse URI of the lake's Iceberg tables (in the silver zone)."""
    return lake.iceberg_warehouse


def catalog(lake: Lake) -> Catalog:
    """The lake's Iceberg catalog (:attr:`lakeline.lake.Lake.catalog`: opened once per lake)."""
    return lake.catalog


def _split(identifier: str | tuple[str, ...]) -> tuple[str, ...]:
    parts = tuple(identifier.split(".")) if isinstance(identifier, str) else tuple(identifier)
    if len(parts) < 2 or any(not p for p in parts):
        raise ConfigError(f"Iceberg identifier {identifier!r} must be <namespace>.<table>")
    return parts


# ---- tables -----------------------------------------------------------------------------

def iceberg_schema(schema: pa.Schema) -> Any:
    """The Iceberg :class:`~pyiceberg.schema.Schema` of an Arrow schema (fresh field ids)."""
    from pyiceberg.catalog import Catalog as _Catalog
    from pyiceberg.schema import assign_fresh_schema_ids

    return assign_fresh_schema_ids(_Catalog._convert_schema_if_needed(schema))


def partition_spec(schema: Any, partition_by: list[tuple[str, str]]) -> Any:
    """A :class:`~pyiceberg.partitioning.PartitionSpec` over ``schema`` (Iceberg or Arrow).

    Create the table with the same Iceberg schema object: the spec's source ids are its ids.
    """
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import DayTransform, IdentityTransform, MonthTransform, YearTransform

    makers: dict[str, Any] = {"identity": IdentityTransform, "day": DayTransform,
                              "month": MonthTransform, "year": YearTransform}
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline

    ice = iceberg_schema(schema) if isinstance(schema, pa.Schema) else schema
    fields = []
    for i, (column, transform) in enumerate(partition_by):
        if transform not in makers:
            raise ConfigError(f"partition transform {transform!r} of {column!r}: use one of {TRANSFORMS}")
        try:
            source = ice.find_field(column)
        except ValueError:
            raise ConfigError(f"partition column {column!r} is not in the schema") from None
        name = column if transform == "identity" else f"{column}_{transform}"
        fields.append(PartitionField(source_id=source.field_id, field_id=1000 + i,
                                     transform=makers[transform](), name=name))
    return PartitionSpec(*fields)


def ensure_table(
    lake: Lake, identifier: str, schema: pa.Schema, partition_by: list[tuple[str, str]] | None = None,
) -> Table:
    """Create the namespace and the table if missing; return the (existing or new) table."""
    parts = _split(identifier)
    cat = catalog(lake)
    ice = iceberg_schema(schema)
    spec = partition_spec(ice, partition_by or [])
    cat.create_namespace_if_not_exists(parts[:-1])
    return cat.create_table_if_not_exists(
        parts, schema=ice, partition_spec=spec, properties=dict(TABLE_PROPERTIES),
    )


def load_table(lake: Lake, identifier: str) -> Table:
    """The table (``NotFoundError`` if it does not exist)."""
    from pyiceberg.exceptions import NoSuchTableError

    from lakeline.errors import NotFoundError

    try:
        return catalog(lake).load_table(_split(identifier))
    except NoSuchTableError:
        raise NotFoundError(f"Iceberg table {identifier} does not exist") from None


def ancestry(table: Table) -> Iterator[Snapshot]:
    """The current snapshot and its ancestors, newest first."""
    from pyiceberg.table.snapshots import ancestors_of

    return iter(ancestors_of(table.current_snapshot(), table.metadata))


def find_batch(table: Table, batch_id: str) -> int | None:
    """The id of the snapshot in the current ancestry that carries ``batch_id``, if any."""
    for snap in ancestry(table):
        summary = snap.summary
        if summary is not None and summary.additional_properties.get(BATCH_ID_PROPERTY) == batch_id:
            return snap.snapshot_id
    return None


def conform(table: Table, data: pa.Table) -> pa.Table:
    """``data`` with the table's columns, order and types; :class:`DataError` if impossible.

    Missing optional columns become nulls; extra columns, missing required columns and
    uncastable values are refused with a message naming the column.
    """
    import pyarrow as pa  # heavy: imported when used, not by importing lakeline

    name = ".".join(table.name())
    target = table.schema().as_arrow()
    have = set(data.column_names)
    extra = sorted(have - set(target.names))
    if extra:
        raise DataError(f"{name}: columns not in the table schema: {', '.join(extra)}",
                        reasons.SCHEMA_ERROR)
    arrays = []
    for field in target:
        if field.name not in have:
            if not field.nullable:
                raise DataError(f"{name}: required column {field.name!r} is missing",
                                reasons.SCHEMA_ERROR)
            arrays.append(pa.nulls(data.num_rows, field.type))
            continue
        col = data.column(field.name)
        if not field.nullable and col.null_count:
            raise DataError(f"{name}: required column {field.name!r} has "
                            f"{col.null_count} null values", reasons.NULL_VALUE_ERROR)
        try:
            arrays.append(col.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise DataError(f"{name}: column {field.name!r} of type {col.type} cannot be "
                            f"cast to {field.type}: {exc}", reasons.TYPE_ERROR) from None
    return pa.Table.from_arrays(arrays, schema=target)


def _retryable() -> tuple[type[BaseException], ...]:
    from pyiceberg.exceptions import CommitFailedException

    out: list[type[BaseException]] = [CommitFailedException]
    try:
        from sqlalchemy.exc import OperationalError  # SQLite "database is locked"

        out.append(OperationalError)
    except ImportError:  # pragma: no cover - sqlalchemy comes with the sql-sqlite extra
        pass
    return tuple(out)


def backoff(attempt: int, base: float = 0.02, cap: float = 2.0) -> float:
    """Full-jitter exponential backoff for commit attempt ``attempt`` (0-based)."""
    return random.uniform(0, min(cap, base * 2 ** attempt))


def append_batch(lake: Lake, identifier: str, data: pa.Table, batch_id: str) -> AppendResult:
    """Append ``data`` as one snapshot tagged with ``batch_id`` — at most once per batch id."""
    if not batch_id:
        raise ValueError("batch_id must be a non-empty string")
    table = load_table(lake, identifier)
    retryable = _retryable()
    rows = conform(table, data)
    last: BaseException | None = None
    for attempt in range(MAX_COMMIT_ATTEMPTS):
        if attempt:
            time.sleep(backoff(attempt - 1))
            table.refresh()
        found = find_batch(table, batch_id)
        if found is not None:
            return AppendResult(found, appended=False, rows=0)
        try:
            with table.transaction() as tx:
                tx.append(rows, snapshot_properties={BATCH_ID_PROPERTY: batch_id})
                crash_point("iceberg.before_commit")  # data + manifests written, not committed
        except retryable as exc:
            last = exc
            continue
        crash_point("iceberg.after_commit")  # committed, caller not told
        table.refresh()
        found = find_batch(table, batch_id)
        if found is None:  # pragma: no cover - the commit succeeded, so the batch is there
            raise TransientError(f"{identifier}: batch {batch_id} committed but not in the history")
        return AppendResult(found, appended=True, rows=rows.num_rows)
    raise TransientError(
        f"{identifier}: batch {batch_id} not committed after {MAX_COMMIT_ATTEMPTS} attempts "
        f"(concurrent writers): {last}"
    )


__all__ = [
    "BATCH_ID_PROPERTY",
    "AppendResult",
    "ancestry",
    "append_batch",
    "catalog",
    "conform",
    "ensure_table",
    "find_batch",
    "iceberg_schema",
    "load_table",
    "partition_spec",
    "warehouse",
]
