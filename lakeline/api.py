"""Driving a lake from Python: open it, land files, run the pipelines, query the tables.

::

    import lakeline

    lake = lakeline.open_lake("./lake", create=True)
    lakeline.put(lake, "orders.csv", pipeline="orders")
    summary = lakeline.run(lake)
    table = lakeline.query(lake, "SELECT count(*) AS n FROM silver.orders")   # a pyarrow.Table

The same operations as the ``lakeline`` CLI (``init``, ``put``, ``run``, ``sql``), on the same
lake: a home directory the CLI can use too. (``query`` is ``sql``: ``lakeline.sql`` names the
module that builds the views.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeline import runner
from lakeline.config import CONFIG_FILE, load_settings
from lakeline.errors import ConfigError, UsageError
from lakeline.lake import Lake, init_home
from lakeline.landing import SEEN, announce
from lakeline.pipelines.registry import registry
from lakeline.sql import connect, plan_query

if TYPE_CHECKING:
    import pyarrow as pa


def open_lake(home: str | os.PathLike[str] | None = None, *, create: bool = False,
              settings: dict[str, Any] | None = None) -> Lake:
    """The lake in ``home`` (default: ``$LAKELINE_HOME``, else the current directory).

    ``create``: make it first when it is not a lake yet (``lakeline init``). ``settings``:
    overrides like ``{"queue.batch_size": 5, "pipelines.retail.schedule": ""}``."""
    if create and home is not None:
        init_home(Path(home))
    s = load_settings(home, settings)
    if s.lake.profile == "local" and not (s.home / CONFIG_FILE).exists() and not (s.home / "zones").exists():
        raise ConfigError(f"{s.home} is not a lakeline home; open it with create=True or run "
                          f"`lakeline init {s.home}`")
    registry(s)  # every pipeline file checked now, not at the first landing
    return Lake.open(s)


def put(lake: Lake, path: str | os.PathLike[str], *, pipeline: str, key: str | None = None) -> dict[str, Any]:
    """Land a local file for ``pipeline`` and announce it (``lakeline put``): ``{key, size,
    etag, duplicate, announced}``."""
    target = registry(lake.settings).get(pipeline)
    if target.landing_prefix is None:
        raise UsageError(f"pipeline {pipeline!r} takes no landed files")
    landed = target.land(lake, Path(path), key)
    if landed["duplicate"] is None:
        landed["duplicate"] = lake.state.get(SEEN, f"{landed['key']}#{landed['etag']}") is not None
    landed["announced"] = announce(lake, landed["key"], force=True)
    return landed


def run(lake: Lake, *, workers: int | None = None) -> dict[str, Any]:
    """Process everything pending until the queues are idle (``lakeline run``); the summary:
    counts, the job pipelines' reports, quality and model results."""
    return runner.run(lake.settings, workers=workers)


def query(lake: Lake, sql: str) -> pa.Table:
    """The result of a DuckDB query over the lake's tables (``lakeline sql``) as Arrow."""
    specs = [t for _, t in registry(lake.settings).tables()]
    con = connect(lake, specs)
    try:
        planned, _ = plan_query(lake, con, sql, tables=specs)
        table: pa.Table = con.sql(planned).to_arrow_table()
        return table
    finally:
        con.close()
