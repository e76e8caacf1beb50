"""A small demo lake for the UI tests: every pipeline kind with something to show.

shipments (streaming, with a dirty file: rejects of several reasons), transactions (a batch run,
its quality gate and promotion), retail (Iceberg, two snapshots), carbon (a workflow whose Map
runs over 6 batches, record lineage, a quality report), and one dead-lettered message.

Built in this process through the Python API and the generators and promotion behind
``lakeline gen`` and ``lakeline promote`` (what the CLI commands call), in the order and with
the options of the CLI session it stands for::

    lakeline init HOME
    lakeline gen shipments --count 3000 --out data/shipments.jsonl --seed 1
    lakeline gen tracking_events --count 500 --out data/tracking_events.jsonl --seed 2
    lakeline put data/shipments.jsonl data/tracking_events.jsonl data/dirty.jsonl --pipeline shipments
    lakeline run
    lakeline gen transactions --count 2000 --dirty-rate 0.01 --out data/transactions.csv --seed 4
    lakeline put data/transactions.csv --pipeline transactions
    lakeline run
    lakeline promote
    lakeline gen retail --out data/retail --count 400
    lakeline put data/retail/{customers,products,orders}.csv --pipeline retail
    lakeline run
    lakeline gen retail --out data/retail2 --seed 2 --count 300
    lakeline put data/retail2/orders.csv --pipeline retail --key retail/orders/ingest_date=2025-10-01/orders-2.csv
    lakeline run
    LAKELINE__PIPELINES__CARBON__BATCH_SIZE=500 lakeline gen carbon --count 3000 --dirty-rate 0.002 --seed 5 --out data/activities.csv
    LAKELINE__PIPELINES__CARBON__BATCH_SIZE=500 lakeline put data/activities.csv --pipeline carbon
    LAKELINE__PIPELINES__CARBON__BATCH_SIZE=500 lakeline run
    (an undecodable chunk message)  lakeline run   # exits 1: dead-lettered
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakeline import api
from lakeline.lake import Lake, init_home
from lakeline.pipelines.base import GenOptions
from lakeline.pipelines.registry import registry
from lakeline.status import promote_run, promoted_tables, run_failures

DIRTY = b"""{"record_type":"shipments","event_time":"2026-01-05T10:00:00Z","shipment_id":"shp_00000000dirt","origin":"SZX","destination":"SEA","carrier":"UPS","weight_kg":4.2}
{"record_type":"shipments","event_time":"2026-01-05T10:00:00Z","weight_kg":"heavy"}

{"record_type":"parcels","event_time":"2026-01-05T10:00:00Z"}
{"record_type": "shipments", "event_time": oops}
"""
#: the carbon Map's batches: 3,000 records in batches of 500
CARBON_RECORDS, CARBON_BATCH = 3000, 500
#: the carbon record the tests trace (file activities.csv, its 42nd record)
TRACED = "carbon-data-lake-0005-000000042"
#: what the CLI session ran with (tests/e2e/helpers.py FAST): no retry delay, a short poll
FAST = {"queue.retry_delay": 0.0, "runner.poll_interval": 0.05}


def _gen(lake: Lake, target: str, **options: Any) -> None:
    """``lakeline gen TARGET`` with ``options`` (the CLI's defaults for the rest)."""
    generators = {t: g for p in registry(lake.settings) if (g := p.generator()) is not None for t in g.targets}
    generators[target].generate(target, GenOptions(**options))


def _put(lake: Lake, pipeline: str, *files: Path, key: str | None = None) -> None:
    for f in files:
        api.put(lake, f, pipeline=pipeline, key=key)


def _run(lake: Lake) -> list[dict[str, Any]]:
    """``lakeline run``: the failures that would make it exit 1."""
    return run_failures(api.run(lake))


def build(root: Path) -> Path:
    """Create the lake under ``root/lake`` (data in ``root/data``); returns the lake home."""
    home, data = root / "lake", root / "data"
    data.mkdir(parents=True)
    init_home(home)
    lake = api.open_lake(home, settings=FAST)
    _gen(lake, "shipments", count=3000, out=data / "shipments.jsonl", seed=1)
    _gen(lake, "tracking_events", count=500, out=data / "tracking_events.jsonl", seed=2)
    (data / "dirty.jsonl").write_bytes(DIRTY)
    _put(lake, "shipments", data / "shipments.jsonl", data / "tracking_events.jsonl", data / "dirty.jsonl")
    assert _run(lake) == []
    _gen(lake, "transactions", count=2000, dirty_rate=0.01, out=data / "transactions.csv", seed=4)
    _put(lake, "transactions", data / "transactions.csv")
    assert _run(lake) == []
    [silver] = promoted_tables(registry(lake.settings)).values()
    trace: dict[str, str | None] = {"glue_job_run_id": None, "execution_arn": None, "execution_start_time": None}
    promoted = promote_run(lake, silver, None, schema_version="v1", trace=trace)
    assert promoted.get("status") == "success", promoted
    _gen(lake, "retail", out=data / "retail", count=400)
    _put(lake, "retail", *(data / "retail" / f"{n}.csv" for n in ("customers", "products", "orders")))
    assert _run(lake) == []
    _gen(lake, "retail", out=data / "retail2", seed=2, count=300)
    _put(lake, "retail", data / "retail2" / "orders.csv", key="retail/orders/ingest_date=2025-10-01/orders-2.csv")
    assert _run(lake) == []
    carbon = api.open_lake(home, settings={**FAST, "pipelines.carbon.batch_size": CARBON_BATCH})
    _gen(carbon, "carbon", count=CARBON_RECORDS, dirty_rate=0.002, seed=5, out=data / "activities.csv")
    _put(carbon, "carbon", data / "activities.csv")
    assert _run(carbon) == []
    # a chunk message nobody can decode is dead-lettered at once (a terminal error)
    lake.transform_queue.send('{"v": 1, "not": "a chunk"}')
    assert "1 message(s) dead-lettered" in [f["what"] for f in _run(lake)]  # `lakeline run` exits 1
    return home
