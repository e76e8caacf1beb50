"""Table formats behind one interface: the Parquet dataset layout and Apache Iceberg.

Pipelines write through one interface, :mod:`lakeline.tables.sink` (``open_sink(lake, spec)``
gives a :class:`~lakeline.tables.sink.ParquetDatasetSink` or an
:class:`~lakeline.tables.sink.IcebergSink` by the table's layout; ``write_batch`` is exactly
once per batch id).

API contract (implemented in :mod:`lakeline.tables.iceberg`; used by pipelines and SQL):

- ``catalog(lake) -> pyiceberg.catalog.Catalog`` — the lake's catalog, ``lake.catalog``:
  picked by ``Lake.open`` (adapters ``lakeline.adapters.local.catalog`` — SQL catalog on
  SQLite in ``<home>/state/catalog.db``, warehouse in the silver zone — and
  ``lakeline.adapters.aws.catalog`` — the Glue Data Catalog, honouring ``aws.endpoint_url``)
  and opened on first use.
- ``ensure_table(lake, identifier, schema, partition_by) -> pyiceberg.table.Table`` — create
  the namespace and table if missing; ``partition_by`` is a list of ``(column, transform)``
  with transform in ``identity | day | month | year``.
- ``append_batch(lake, identifier, data: pa.Table, batch_id: str) -> AppendResult`` — exactly
  once: the batch id is recorded in the snapshot summary; a batch whose commit already landed
  is detected and not appended again; commit conflicts are retried after a refresh.
- ``AppendResult(snapshot_id: int | None, appended: bool, rows: int)``.
- maintenance: ``compact(lake, identifier, target_file_bytes)``,
  ``expire_snapshots(lake, identifier, older_than)``,
  ``remove_orphan_files(lake, identifier, older_than)``.
"""
