"""Commit points hold when a write fails (issue 16, part 9).

Every commit point of the lake is a write that publishes what was written before it:

(a) totesys: the packet (and its boundary object) in the raw zone, then the packet id and the
    watermark in the parameter store;
(b) stream transform: the silver files, then the ``silver_partition_ready`` events and the
    chunk's ledger entry (and the run log);
(c) promotion: the copies into ``current/``, then ``_LATEST.json``;
(d) batch runs: the run's Parquet files, rejects and attempts, then the ``_SUCCESS`` markers;
(e) Iceberg: the data files, then the catalog commit (the new snapshot).

Each test makes a write *before* the commit point fail with an ``OSError`` raised by the object
store itself — :class:`FailingStore` wraps the lake's real store adapter (and
:class:`FailingFileIO` pyiceberg's real file IO) and refuses matching writes while the fault is
on — then asserts that the pointer did not move, removes the fault and checks that the next
run completes exactly once (exact row counts, no duplicate).

Last, a key such as ``a/../b`` (it would stay inside its zone) is refused by every backend,
local and S3, for every operation: not only by the local path check.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from lakeline.adapters.local.catalog import SqliteCatalogOpener
from lakeline.config import load_settings
from lakeline.errors import InvalidKeyError, NotFoundError
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.pipelines.totesys import gen as totesys_gen
from lakeline.pipelines.totesys.extract import extract, list_packets, param_name
from lakeline.pipelines.totesys.schema import TABLES
from lakeline.pipelines.transactions.job import TABLE, execute_run, pending_files
from lakeline.ports.objectstore import ObjectInfo, ObjectStore
from lakeline.ports.state import RUNS
from lakeline.promotion.promote import current_files, promote, read_latest
from lakeline.promotion.runs import SUCCESS, list_runs
from lakeline.runner import Worker
from lakeline.stages.messages import CHUNKS, PARTITION_READY, ChunkMessage
from lakeline.stages.transform import Transformer
from lakeline.tables import iceberg
from tests.aws_server import moto_endpoint  # noqa: F401 - the S3 backend's server
from tests.contract.store_backends import object_store  # noqa: F401 - the both-backends fixture
from tests.functional.helpers import land, query, rec, settings


# ---- the fault: an OSError raised by the store itself ---------------------------------------
class FailingStore(ObjectStore):
    """The lake's own store adapter, except that writes (``put``, ``put_file``, ``copy`` into)
    of a key of ``zone`` matching ``pattern`` (fnmatch) raise ``OSError(ENOSPC)`` from the
    ``nth`` matching call on, until :meth:`heal` — a disk that filled up mid-run. Reads and
    every other call go to the real adapter unchanged."""

    def __init__(self, inner: ObjectStore, zone: str, pattern: str, *, nth: int = 1) -> None:
        self.inner, self.zone, self.pattern, self.nth = inner, zone, pattern, nth
        self.matched = 0
        self.failed: list[str] = []
        self.healed = False

    def heal(self) -> None:
        """Remove the fault: every later write succeeds."""
        self.healed = True

    def _write(self, zone: str, key: str) -> None:
        if self.healed or zone != self.zone or not fnmatch.fnmatchcase(key, self.pattern):
            return
        self.matched += 1
        if self.matched >= self.nth:
            self.failed.append(key)
            raise OSError(28, "No space left on device (injected)", key)

    def put(self, zone: str, key: str, data: bytes) -> ObjectInfo:
        self._write(zone, key)
        return self.inner.put(zone, key, data)

    def put_file(self, zone: str, key: str, path: Path, *, move: bool = False) -> ObjectInfo:
        self._write(zone, key)
        return self.inner.put_file(zone, key, path, move=move)

    def copy(self, src_zone: str, src_key: str, dst_zone: str, dst_key: str) -> ObjectInfo:
        self._write(dst_zone, dst_key)
        return self.inner.copy(src_zone, src_key, dst_zone, dst_key)

    def bucket(self, zone: str) -> str:
        return self.inner.bucket(zone)

    def get(self, zone: str, key: str) -> bytes:
        return self.inner.get(zone, key)

    def get_range(self, zone: str, key: str, start: int, end: int) -> bytes:
        return self.inner.get_range(zone, key, start, end)

    def head(self, zone: str, key: str) -> ObjectInfo:
        return self.inner.head(zone, key)

    def list(self, zone: str, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.inner.list(zone, prefix)

    def delete(self, zone: str, key: str) -> None:
        self.inner.delete(zone, key)

    def local_path(self, zone: str, key: str) -> Path | None:
        return self.inner.local_path(zone, key)

    def scan_uri(self, zone: str, prefix: str = "") -> str:
        return self.inner.scan_uri(zone, prefix)


def failing(lake: Lake, zone: str, pattern: str, *, nth: int = 1) -> FailingStore:
    """Put a :class:`FailingStore` in front of ``lake``'s store and return it."""
    store = FailingStore(lake.store, zone, pattern, nth=nth)
    lake.store = store
    return store


def _silver_count(lake: Lake, table: str, distinct: str) -> tuple[int, int]:
    [(rows, ids)] = query(lake, f"SELECT count(*), count(DISTINCT {distinct}) FROM {table}")
    return int(rows), int(ids)


# ---- (a) totesys: packet, then watermark and packet id ------------------------------------------
def _totesys_state(lake: Lake) -> dict[str, tuple[str | None, str | None]]:
    return {t: (lake.params.get(param_name(t, "latest_extracted_timestamp")),
                lake.params.get(param_name(t, "latest_packet_id"))) for t in TABLES}


def _packet_rows(lake: Lake, table: str) -> list[dict[str, Any]]:
    rows = []
    for seq, key in sorted(list_packets(lake).get(table, {}).items()):
        rows += [dict(orjson.loads(line), _seq=seq) for line in lake.store.get("raw", key).splitlines()]
    return rows


@pytest.mark.parametrize("what,pattern", [
    ("packet", "totesys/????-??-??/payment_00000002_*.jsonl"),
    ("boundary object", "totesys/_state/payment_00000002.json"),
])
def test_totesys_raw_write_fails_watermark_and_packet_id_stay(home: Path, tmp_path: Path, fault: Any,
                                                              what: str, pattern: str) -> None:
    fault(f"totesys: the {what} write to the raw zone fails (OSError)",
          expected="payment's watermark and packet id unchanged, run FAILED; next run stores "
                   "packet 2 once with exactly the changed rows")
    db = tmp_path / "totesys.db"
    totesys_gen.create(str(db), scale=200, seed=5)
    lake = Lake.open(load_settings(home, {"pipelines.totesys.retries": 2,
                                          "pipelines.totesys.retry_delay": 0.01}))
    assert extract(lake, str(db)).status == "SUCCEEDED"
    change = totesys_gen.mutate(str(db), seed=2)
    changed = int(change["changed"]["payment"])
    assert changed > 0
    before = _totesys_state(lake)
    first = _packet_rows(lake, "payment")

    store = failing(lake, "raw", pattern)
    report = extract(lake, str(db))
    after = _totesys_state(lake)
    fault.saw(f"run {report.status} ({report.error}); payment (watermark, packet id) "
              f"{before['payment']} -> {after['payment']}; packets {sorted(list_packets(lake)['payment'])}")
    assert store.failed and report.status == "FAILED"
    assert report.error is not None and report.error.startswith("OSError")
    assert after["payment"] == before["payment"]
    assert after["payment"][1] == "1"
    # the tables before payment committed their own packets (each table commits alone)
    assert after["transaction"][1] == "2"

    store.heal()
    again = extract(lake, str(db))
    assert again.status == "SUCCEEDED"
    assert {t.table: t.rows for t in again.tables}["payment"] == changed
    assert _totesys_state(lake)["payment"][1] == "2"
    rows = _packet_rows(lake, "payment")
    assert len(rows) == len(first) + changed
    stored = [i.key for i in lake.store.list("raw", "totesys/") if "payment_00000002" in i.key]
    assert len(stored) == 2, stored  # packet 2 and its boundary object, each once
    versions = [(r["payment_id"], r["last_updated"]) for r in rows]
    assert len(set(versions)) == len(versions)  # no version stored twice
    assert _totesys_state(lake)["payment"][0] == max(r["last_updated"] for r in rows)


# ---- (b) stream transform: files, then events and ledger -----------------------------------------
def _stream_lake(home: Path, fast_path: bool) -> tuple[Lake, list[ChunkMessage], int]:
    """A lake with one landed shipments file (2 days → 2 partitions) ingested into one chunk."""
    lake = Lake.open(settings(home, transform__fast_path=fast_path))
    lines = [orjson.dumps(rec(shipment_id=f"shp_{i:012d}", event_time=f"2026-01-0{1 + i % 2}T10:00:00Z"))
             for i in range(40)]
    land(lake, "shipments/2026/f1.jsonl", b"\n".join(lines) + b"\n")
    worker = Worker(lake, registry(lake.settings))
    try:
        assert worker.step() == 1  # the ingest message only: the worker handles ingest first
    finally:
        worker.close()
    chunks = [ChunkMessage.from_json(m.body) for m in lake.transform_queue.receive(10)]
    assert len(chunks) == 1
    return lake, chunks, len(lines)


@pytest.mark.parametrize("fast_path", [True, False])
def test_transform_silver_write_fails_no_event_no_ledger(home: Path, fault: Any, fast_path: bool) -> None:
    path = "fast" if fast_path else "exact"
    fault(f"transform ({path} path): the second silver file write fails (OSError)",
          expected="no silver_partition_ready event, no ledger entry, run not COMPLETE; the retry "
                   "loads 40 rows once, 2 events")
    lake, [msg], n = _stream_lake(home, fast_path)
    store = failing(lake, "silver", "shipments/*", nth=2)
    transformer = Transformer(lake, registry(lake.settings).stream)
    try:
        with pytest.raises(OSError, match="injected"):
            transformer.process(msg)
        events = lake.state.events(PARTITION_READY)
        ledger = lake.state.get(CHUNKS, f"{msg.object_id}#{msg.chunk:05d}")
        run = lake.state.get(RUNS, msg.run_key)
        fault.saw(f"failed {store.failed}; events {len(events)}, ledger {ledger is not None}, "
                  f"run {None if run is None else run.data.get('status')}")
        assert len(store.failed) == 1
        assert events == []
        assert ledger is None
        assert run is None or run.data.get("status") != "COMPLETE"

        store.heal()
        result = transformer.process(msg)
    finally:
        transformer.close()
    assert (result.loaded, result.rejected) == (n, 0)
    assert _silver_count(lake, "silver.shipments", "shipment_id") == (n, n)
    assert sorted(e["detail"]["dt"] for e in lake.state.events(PARTITION_READY)) == ["2026-01-01", "2026-01-02"]
    entry = lake.state.get(CHUNKS, f"{msg.object_id}#{msg.chunk:05d}")
    assert entry is not None and entry.data["loaded"] == n
    run = lake.state.get(RUNS, msg.run_key)
    assert run is not None and (run.data["status"], run.data["loaded"]) == ("COMPLETE", n)


# ---- (d) batch runs: run files, then _SUCCESS -------------------------------------------------
HEADER = "TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp\n"
CSV = HEADER + (
    "TXN-1,C1,10.50,USD,2024-01-05T10:00:00Z\n"
    "TXN-2,,10.50,USD,2024-01-05T10:00:00Z\n"   # NULL_VALUE_ERROR
    "TXN-3,C1,abc,USD,2024-01-05T10:00:00Z\n"   # TYPE_ERROR
    "TXN-4,C1,3.00,EUR,2024-02-05T10:00:00Z\n"
    "TXN-5,C1,4.00,EUR,2024-02-06T10:00:00Z\n"
)
NOW = datetime(2026, 1, 29, 12, 0, 0, tzinfo=UTC)


def _markers(lake: Lake) -> list[str]:
    return sorted(i.key for i in lake.store.list("silver", TABLE + "/") if i.key.endswith("/" + SUCCESS))


def _rejects(lake: Lake) -> list[tuple[Any, ...]]:
    return query(lake, "SELECT key, line_no, reason_code FROM quarantine.rejects "
                       "WHERE pipeline = 'transactions' ORDER BY ALL")


@pytest.mark.parametrize("what,zone,pattern,nth", [
    ("second partition's Parquet file", "silver", TABLE + "/*.parquet", 2),
    ("rejects file", "error", "rejects/transactions/*", 1),
    ("attempts file", "error", "attempts/*", 1),
    ("second _SUCCESS marker", "silver", "*/" + SUCCESS, 2),
])
def test_batch_run_write_fails_no_success_marker(home: Path, fault: Any, what: str, zone: str, pattern: str,
                                                 nth: int) -> None:
    fault(f"transactions run: the {what} write fails (OSError)",
          expected="run INCOMPLETE (never promotable), files still pending; the next run: 3 valid "
                   "rows in 2 partitions, 2 rejects, once")
    lake = Lake.open(settings(home))
    lake.store.put("landing", "transactions/t1.csv", CSV.encode())
    store = failing(lake, zone, pattern, nth=nth)
    with pytest.raises(OSError, match="injected"):
        execute_run(lake, ["transactions/t1.csv"], now=NOW)
    runs = list_runs(lake, TABLE)
    fault.saw(f"failed {store.failed}; runs {[r.status for r in runs]}, pending "
              f"{pending_files(lake)}")
    assert len(store.failed) == 1
    assert [r.complete for r in runs] == [False]
    assert pending_files(lake) == ["transactions/t1.csv"]
    if nth == 1:
        assert _markers(lake) == []  # every marker comes after this write
    assert promote(lake, {"silver_prefix": TABLE, "schema_version": "v1"})["code"] == "NO_COMPLETED_RUN"

    store.heal()
    report = execute_run(lake, pending_files(lake), now=NOW)
    assert (report.valid_rows, report.quarantined_rows) == (3, 2)
    complete = [r for r in list_runs(lake, TABLE) if r.complete]
    assert [r.run_id for r in complete] == [report.run_id]
    assert len(complete[0].folders) == 2 and all(f.marker is not None for f in complete[0].folders)
    assert pending_files(lake) == []
    # exactly once downstream: the promoted rows and the rejects table
    assert promote(lake, {"silver_prefix": TABLE, "schema_version": "v1"})["status"] == "success"
    promoted = current_files(lake, TABLE)
    [(rows, ids)] = query(lake, "SELECT count(*), count(DISTINCT \"TransactionID\") FROM read_parquet("
                                + "[" + ", ".join(f"'{lake.store.local_path('silver', k)}'" for k in promoted) + "])")
    assert (rows, ids) == (3, 3)
    assert _rejects(lake) == [("transactions/t1.csv", 3, "NULL_VALUE_ERROR"),
                              ("transactions/t1.csv", 4, "TYPE_ERROR")]


# ---- (c) promotion: copies, then _LATEST.json ---------------------------------------------------
def test_promotion_copy_fails_latest_json_stays(home: Path, fault: Any) -> None:
    fault("promotion: the second copy into current/ fails (OSError)",
          expected="_LATEST.json still names the old run, readers see its rows; the next promotion "
                   "flips once, current/ holds only the new run")
    lake = Lake.open(settings(home))
    lake.store.put("landing", "transactions/t1.csv", CSV.encode())
    first = execute_run(lake, ["transactions/t1.csv"], now=NOW)
    event = {"silver_prefix": TABLE, "schema_version": "v1"}
    assert promote(lake, event)["status"] == "success"
    partitions = sorted(p["partition"] for p in first.partitions)
    old = {p: read_latest(lake, p) for p in partitions}
    lake.store.put("landing", "transactions/t2.csv", (HEADER + "TXN-6,C2,5.00,EUR,2024-01-07T10:00:00Z\n"
                                                      "TXN-7,C2,6.00,EUR,2024-02-07T10:00:00Z\n").encode())
    second = execute_run(lake, ["transactions/t2.csv"], now=NOW.replace(hour=13))

    store = failing(lake, "silver", "*/current/*", nth=2)
    with pytest.raises(OSError, match="injected"):
        promote(lake, dict(event, run_key=second.run_id))
    now_latest = {p: read_latest(lake, p) for p in partitions}
    fault.saw(f"failed {store.failed}; _LATEST.json run ids "
              f"{[(x or {}).get('run_id') for x in now_latest.values()]} (old {first.run_id})")
    assert len(store.failed) == 1
    assert now_latest == old  # not one partition moved: the first copy's partition neither
    assert sorted(current_files(lake, TABLE)) == sorted(k for p in old.values() for k in (p or {})["files"])

    store.heal()
    out = promote(lake, dict(event, run_key=second.run_id))
    assert out["status"] == "success" and not out["noop"]
    for p in partitions:
        latest = read_latest(lake, p)
        assert latest is not None and latest["run_id"] == second.run_id
        listed = sorted(i.key for i in lake.store.list("silver", f"{p}/current/"))
        assert listed == sorted(latest["files"]) and len(listed) == 1
    keys = current_files(lake, TABLE)
    [(rows, ids)] = query(lake, "SELECT count(*), count(DISTINCT \"TransactionID\") FROM read_parquet("
                                + "[" + ", ".join(f"'{lake.store.local_path('silver', k)}'" for k in keys) + "])")
    assert (rows, ids) == (2, 2)


# ---- (e) Iceberg: data files, then the commit ------------------------------------------------
class FailingFileIO:
    """Factory of pyiceberg's real ``PyArrowFileIO`` whose ``new_output`` raises ``OSError`` for
    data files (``/data/``) while :data:`ICEBERG_FAULT` is on (pyiceberg builds the table's IO
    from the catalog property ``py-io-impl``, so the table writes through it)."""

    def __new__(cls, properties: Any = None) -> Any:
        from pyiceberg.io.pyarrow import PyArrowFileIO  # heavy: pyiceberg

        class _Failing(PyArrowFileIO):
            def new_output(self, location: str) -> Any:
                if ICEBERG_FAULT["on"] and "/data/" in location:
                    ICEBERG_FAULT["failed"].append(location)
                    raise OSError(28, "No space left on device (injected)", location)
                return super().new_output(location)

        return _Failing(properties or {})


ICEBERG_FAULT: dict[str, Any] = {"on": False, "failed": []}


class _FailingCatalog(SqliteCatalogOpener):
    def properties(self) -> dict[str, str]:
        return {**super().properties(), "py-io-impl": f"{__name__}.FailingFileIO"}


def test_iceberg_data_file_write_fails_snapshot_stays(home: Path, fault: Any) -> None:
    import pyarrow as pa  # heavy: Arrow

    fault("Iceberg: the data file write of an append fails (OSError)",
          expected="no new snapshot, the batch id not in the history; the retry appends once")
    lake = Lake.open(settings(home))
    lake.catalog_opener = _FailingCatalog.for_settings(lake.settings)
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("v", pa.string())])
    ident = "silver.faulty"
    iceberg.ensure_table(lake, ident, schema)
    iceberg.append_batch(lake, ident, pa.table({"id": [1, 2], "v": ["a", "b"]}, schema=schema), "b1")
    before = iceberg.load_table(lake, ident).current_snapshot()
    assert before is not None
    batch = pa.table({"id": [3, 4, 5], "v": ["c", "d", "e"]}, schema=schema)
    ICEBERG_FAULT.update(on=True, failed=[])
    try:
        with pytest.raises(OSError, match="injected"):
            iceberg.append_batch(lake, ident, batch, "b2")
    finally:
        ICEBERG_FAULT["on"] = False
    table = iceberg.load_table(lake, ident)
    snap = table.current_snapshot()
    fault.saw(f"failed {len(ICEBERG_FAULT['failed'])} data file(s); snapshot "
              f"{before.snapshot_id} -> {None if snap is None else snap.snapshot_id}")
    assert ICEBERG_FAULT["failed"]
    assert snap is not None and snap.snapshot_id == before.snapshot_id
    assert iceberg.find_batch(table, "b2") is None

    again = iceberg.append_batch(lake, ident, batch, "b2")
    assert (again.appended, again.rows) == (True, 3)
    assert iceberg.append_batch(lake, ident, batch, "b2").appended is False  # redelivery: once
    ids = sorted(iceberg.load_table(lake, ident).scan().to_arrow().column("id").to_pylist())
    assert ids == [1, 2, 3, 4, 5]


# ---- keys with a '..' segment, on every backend ------------------------------------------------
@pytest.mark.parametrize("key", ["a/../b", "a/./b", "../b", "a/.."])
def test_dot_segment_key_refused_on_every_backend(object_store: ObjectStore, fault: Any,  # noqa: F811
                                                  tmp_path: Path, key: str) -> None:
    backend = type(object_store).__name__
    fault(f"key {key!r} on {backend}", expected="InvalidKeyError naming the key for every call; nothing stored")
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    object_store.put("landing", "b", b"original")
    calls = {
        "put": lambda: object_store.put("landing", key, b"evil"),
        "put_file": lambda: object_store.put_file("landing", key, src),
        "copy to": lambda: object_store.copy("landing", "b", "landing", key),
        "copy from": lambda: object_store.copy("landing", key, "raw", "c"),
        "get": lambda: object_store.get("landing", key),
        "get_range": lambda: object_store.get_range("landing", key, 0, 1),
        "head": lambda: object_store.head("landing", key),
        "exists": lambda: object_store.exists("landing", key),
        "delete": lambda: object_store.delete("landing", key),
        "local_path": lambda: object_store.local_path("landing", key),
        "scan_uri": lambda: object_store.scan_uri("landing", key),
    }
    refused = []
    for name, call in calls.items():
        try:
            call()
        except InvalidKeyError as exc:
            assert repr(key) in str(exc), (name, str(exc))
            refused.append(name)
        except NotFoundError:
            pass
    stored = [i.key for i in object_store.list("landing")]
    fault.saw(f"refused {len(refused)} of {len(calls)} calls; stored {stored}")
    assert refused == list(calls)
    assert stored == ["b"]
    assert object_store.get("landing", "b") == b"original"
    with pytest.raises(NotFoundError):
        object_store.head("raw", "c")


# ---- (b') a keyed load of several chunks: the final write, then the load's record ----------------
EVENTS = """
format = "jsonl"
time_field = "at"
[tables.buys]
key = ["order"]
fields = [{ name = "at", type = "timestamp" }, { name = "order", type = "int64" }, { name = "total", type = "float64" }]
"""


@pytest.mark.parametrize("what,zone,pattern", [
    ("deduplicated silver file", "silver", "buys/*final*"),
    ("duplicates' rejects file", "error", "rejects/events/*final*"),
])
def test_keyed_load_final_write_fails_load_not_recorded(home: Path, fault: Any, what: str, zone: str,
                                                        pattern: str) -> None:
    fault(f"keyed load of several chunks: the {what} write fails (OSError)",
          expected="no finals record, run not COMPLETE, staging kept; the redelivered last chunk "
                   "publishes 50 rows and 70 duplicate rejects once")
    s = settings(home, ingest__chunk_bytes=1024)
    (s.home / "pipelines").mkdir(exist_ok=True)
    (s.home / "pipelines" / "events.toml").write_text(EVENTS)
    lake = Lake.open(s)
    body = b"".join(orjson.dumps({"at": "2026-01-05T10:00:00Z", "order": i % 50, "total": 1.0}) + b"\n"
                    for i in range(120))
    land(lake, "events/a.jsonl", body)
    reg = registry(lake.settings)
    worker = Worker(lake, reg)
    try:
        assert worker.step() == 1  # the ingest message only: the worker handles ingest first
    finally:
        worker.close()
    msgs: list[ChunkMessage] = []
    while batch := lake.transform_queue.receive(10):
        msgs += [ChunkMessage.from_json(m.body) for m in batch]
    msgs.sort(key=lambda m: m.chunk)
    assert len(msgs) > 3
    store = failing(lake, zone, pattern)
    transformer = Transformer(lake, reg.stream)
    try:
        for msg in msgs[:-1]:
            transformer.process(msg)
        with pytest.raises(OSError, match="injected"):
            transformer.process(msgs[-1])
        last = msgs[-1]
        run = lake.state.get(RUNS, last.run_key)
        staged = [i.key for i in lake.store.list("tmp", f"staging/events/{last.object_id}/")]
        fault.saw(f"failed {store.failed}; finals {lake.state.get('finals', last.object_id) is not None}, "
                  f"run {None if run is None else run.data.get('status')}, staged files {len(staged)}")
        assert len(store.failed) == 1
        assert lake.state.get("finals", last.object_id) is None
        assert run is None or run.data.get("status") != "COMPLETE"
        assert len(staged) == len(msgs)
        assert lake.state.events(PARTITION_READY) == []

        store.heal()
        transformer.process(last)  # the redelivery
    finally:
        transformer.close()
    assert _silver_count(lake, "silver.buys", '"order"') == (50, 50)
    assert query(lake, "SELECT reason_code, count(*), count(DISTINCT line_no) FROM quarantine.rejects "
                       "GROUP BY ALL") == [("DUPLICATE_FAILURE", 70, 70)]
    run = lake.state.get(RUNS, last.run_key)
    assert run is not None and (run.data["status"], run.data["loaded"], run.data["rejected"]) == ("COMPLETE", 50, 70)
    assert len(lake.state.events(PARTITION_READY)) == 1
    assert list(lake.store.list("tmp", "staging/")) == []
