"""A small demo lake for the UI tests: every pipeline kind with something to show.

shipments (streaming, with a dirty file: rejects of several reasons), transactions (a batch run,
its quality gate and promotion), retail (Iceberg, two snapshots), carbon (a workflow whose Map
runs over 6 batches, record lineage, a quality report), and one dead-lettered message.
"""

from __future__ import annotations

from pathlib import Path

from lakeline.config import load_settings
from lakeline.lake import Lake
from tests.e2e.helpers import Cli

DIRTY = b"""{"record_type":"shipments","event_time":"2026-01-05T10:00:00Z","shipment_id":"shp_00000000dirt","origin":"SZX","destination":"SEA","carrier":"UPS","weight_kg":4.2}
{"record_type":"shipments","event_time":"2026-01-05T10:00:00Z","weight_kg":"heavy"}

{"record_type":"parcels","event_time":"2026-01-05T10:00:00Z"}
{"record_type": "shipments", "event_time": oops}
"""
#: the carbon Map's batches: 3,000 records in batches of 500
CARBON_RECORDS, CARBON_BATCH = 3000, 500
#: the carbon record the tests trace (file activities.csv, its 42nd record)
TRACED = "carbon-data-lake-0005-000000042"


def build(root: Path) -> Path:
    """Create the lake under ``root/lake`` (data in ``root/data``); returns the lake home."""
    home, data = root / "lake", root / "data"
    data.mkdir(parents=True)
    cli = Cli(home, root)
    env = {"LAKELINE__PIPELINES__CARBON__BATCH_SIZE": str(CARBON_BATCH)}
    cli.ok("init", home)
    cli.ok("gen", "shipments", "--count", "3000", "--out", data / "shipments.jsonl", "--seed", "1")
    cli.ok("gen", "tracking_events", "--count", "500", "--out", data / "tracking_events.jsonl", "--seed", "2")
    (data / "dirty.jsonl").write_bytes(DIRTY)
    cli.ok("put", data / "shipments.jsonl", data / "tracking_events.jsonl", data / "dirty.jsonl",
           "--pipeline", "shipments")
    cli.ok("run")
    cli.ok("gen", "transactions", "--count", "2000", "--dirty-rate", "0.01", "--out", data / "transactions.csv",
           "--seed", "4")
    cli.ok("put", data / "transactions.csv", "--pipeline", "transactions")
    cli.ok("run")
    cli.ok("promote")
    cli.ok("gen", "retail", "--out", data / "retail", "--count", "400")
    cli.ok("put", *(data / "retail" / f"{n}.csv" for n in ("customers", "products", "orders")),
           "--pipeline", "retail")
    cli.ok("run")
    cli.ok("gen", "retail", "--out", data / "retail2", "--seed", "2", "--count", "300")
    cli.ok("put", data / "retail2" / "orders.csv", "--pipeline", "retail",
           "--key", "retail/orders/ingest_date=2025-10-01/orders-2.csv")
    cli.ok("run")
    cli.ok("gen", "carbon", "--count", str(CARBON_RECORDS), "--dirty-rate", "0.002", "--seed", "5",
           "--out", data / "activities.csv")
    cli.ok("put", data / "activities.csv", "--pipeline", "carbon", env=env)
    cli.ok("run", env=env)
    # a chunk message nobody can decode is dead-lettered at once (a terminal error)
    lake = Lake.open(load_settings(home))
    lake.transform_queue.send('{"v": 1, "not": "a chunk"}')
    assert cli("run").returncode == 1
    return home
