"""SQL models materialised by Athena (``lakeline models run --engine athena --profile aws``).

For each due model (the same planning, due rules, state and lineage as the DuckDB engine,
:func:`lakeline.models.run_models`), Athena runs a CTAS of the model translated to Athena SQL
(:mod:`lakeline.models.athena`) into a fresh prefix of the ``tmp`` zone; lakeline then writes
those Parquet files as ``gold/NAME/data.parquet`` — one object replaced at once, the layout the
DuckDB engine writes — and drops the scratch table and files. The scan, joins and aggregations
over silver run on Athena; only the model's result passes through the machine running the
command (gold results are usually small: a model that returns billions of rows belongs in a
pipeline).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from lakeline.adapters.aws.session import AwsClients
from lakeline.aws.athena import run_query
from lakeline.lake import Lake
from lakeline.models.athena import ctas
from lakeline.models.run import Writer
from lakeline.models.spec import Model
from lakeline.tables.schema import TableSpec

SCRATCH = "athena/models"


def athena_writer(clients: AwsClients, *, database: str, workgroup: str,
                  version: Callable[[Model], str] = lambda m: uuid.uuid4().hex[:12]) -> Writer:
    """A model writer running each model on Athena (``version`` names its scratch prefix)."""

    def write(lake: Lake, tables: Sequence[TableSpec], m: Model, work: Path) -> int:
        import pyarrow as pa  # heavy: only when a model runs
        import pyarrow.parquet as pq

        ver = re.sub(r"[^a-z0-9_]", "_", version(m).lower())
        prefix = f"{SCRATCH}/{m.name}/{ver}/"
        table = f"lakeline_tmp_{m.name}_{ver}"
        location = lake.store.scan_uri("tmp", prefix) + "/"
        try:
            run_query(clients, ctas(m, database, table, location), workgroup=workgroup, database=database)
            parts = [pq.read_table(pa.BufferReader(lake.store.get("tmp", i.key)))
                     for i in sorted(lake.store.list("tmp", prefix), key=lambda i: i.key)]
            result = pa.concat_tables(parts, promote_options="default") if parts else pa.table({})
            pq.write_table(result, work, compression="zstd")
            return result.num_rows
        finally:
            run_query(clients, f'DROP TABLE IF EXISTS "{database}"."{table}"', workgroup=workgroup,
                      database=database)
            for i in list(lake.store.list("tmp", prefix)):
                lake.store.delete("tmp", i.key)

    return write


__all__ = ["SCRATCH", "athena_writer"]
