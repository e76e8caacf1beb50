"""Table formats behind one interface: the Parquet dataset layout and Apache Iceberg.

API contract (implemented in :mod:`lakeline.tables.iceberg`; used by pipelines and SQL):

- ``catalog(lake) -> pyiceberg.catalog.Catalog`` — SQL catalog on SQLite in the local lake
  (``<home>/state/catalog.db``, warehouse in the silver zone), Glue Data Catalog on the aws
  profile (honouring ``aws.endpoint_url``).
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
