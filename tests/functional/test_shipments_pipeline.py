"""The shipments pipeline end to end on the local lake: exact counts, rejects, guarantees."""

from __future__ import annotations

import orjson
import pyarrow.parquet as pq

from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.stages.chunking import count_records, scan_block
from lakeline.stages.transform import Transformer
from tests.functional.helpers import land, query, rec, run, settings


def jsonl(*records: object) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def test_records_partition_by_their_own_event_time_in_utc(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", jsonl(
        rec(event_time="2026-01-05T23:30:00Z", shipment_id="shp_a"),
        rec(event_time="2026-01-05T23:30:00-05:00", shipment_id="shp_b"),  # = 2026-01-06 04:30Z
        rec(event_time="2026-01-06 01:00:00", shipment_id="shp_c"),  # naive = UTC
        rec("tracking_events", event_time="2026-01-07T00:00:00Z"),
        rec("invoice_lines", quantity="3", unit_price=2, line_total=6),
    ))
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (5, 0)
    rows = query(lake, "SELECT shipment_id, CAST(dt AS VARCHAR), strftime(event_time, '%Y-%m-%dT%H:%M:%S') "
                       "FROM silver.shipments ORDER BY shipment_id")
    assert rows == [
        ("shp_a", "2026-01-05", "2026-01-05T23:30:00"),
        ("shp_b", "2026-01-06", "2026-01-06T04:30:00"),
        ("shp_c", "2026-01-06", "2026-01-06T01:00:00"),
    ]
    assert query(lake, "SELECT quantity, unit_price, line_total FROM silver.invoice_lines") == [(3, 2.0, 6.0)]
    assert query(lake, "SELECT CAST(dt AS VARCHAR) FROM silver.tracking_events") == [("2026-01-07",)]
    files = sorted(i.key for i in lake.store.list("silver"))
    assert len(files) == 4 and all(f.endswith("-c00000.parquet") for f in files)


def test_silver_types_and_source_lineage(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/t.jsonl", b"\n" + jsonl(rec(weight_kg=12)))
    run(s)
    key = next(i.key for i in lake.store.list("silver"))
    schema = pq.read_schema(lake.store.local_path("silver", key))
    assert str(schema.field("event_time").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("weight_kg").type) == "double"
    assert str(schema.field("_source").type) == (
        "struct<bucket: string, key: string, etag: string, line_no: int64>")
    etag = lake.store.head("landing", "shipments/t.jsonl").etag
    assert query(lake, "SELECT _source FROM silver.shipments") == [
        ({"bucket": "landing", "key": "shipments/t.jsonl", "etag": etag, "line_no": 2},)]


def test_bad_lines_are_rejected_with_line_offset_and_reason_and_good_lines_load(home):
    s = settings(home)
    lake = Lake.open(s)
    lines = [
        orjson.dumps(rec(shipment_id="shp_ok1")),
        b'{"record_type": "shipments", "event_time": oops}',
        b"",
        orjson.dumps(rec(weight_kg="heavy")),
        orjson.dumps(rec("parcels")),
        b"[1, 2]",
        orjson.dumps(rec(event_time="not a time")),
        orjson.dumps({"record_type": "shipments", "shipment_id": "x"}),
        orjson.dumps(rec("invoice_lines", quantity=2.5)),
        orjson.dumps(rec(shipment_id={"nested": 1})),
        b'{"record_type": "tracking_events", "city": "\xff\xfe"}',
        orjson.dumps(rec(shipment_id="shp_ok2")),
    ]
    body = b"\n".join(lines) + b"\n"
    land(lake, "shipments/dirty.jsonl", body)
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (2, 9)
    rejects = query(lake, "SELECT line_no, byte_offset, reason_code FROM quarantine.rejects ORDER BY line_no")
    offsets = [body.index(line) if line else None for line in lines]
    assert rejects == [
        (2, offsets[1], "MALFORMED_JSON"),
        (4, offsets[3], "TYPE_ERROR"),
        (5, offsets[4], "SCHEMA_ERROR"),
        (6, offsets[5], "NOT_AN_OBJECT"),
        (7, offsets[6], "TIMESTAMP_ERROR"),
        (8, offsets[7], "NULL_VALUE_ERROR"),
        (9, offsets[8], "TYPE_ERROR"),
        (10, offsets[9], "TYPE_ERROR"),
        (11, offsets[10], "ENCODING_ERROR"),
    ]
    messages = dict(query(lake, "SELECT line_no, message FROM quarantine.rejects"))
    assert messages[4] == "weight_kg: heavy is not float64"
    assert messages[5] == "unknown record_type parcels"
    assert messages[9] == "quantity: 2.5 is not int64"
    assert "line is not valid JSON" in messages[2]
    raw = dict(query(lake, "SELECT line_no, raw FROM quarantine.rejects"))
    assert raw[4] == lines[3].decode()
    # counts reconcile: non-blank lines in = rows loaded + rejects
    assert count_records(body) == 11 == 2 + 9
    entry = lake.state.runs()[0]
    assert (entry["status"], entry["records"], entry["loaded"], entry["rejected"]) == ("COMPLETE", 11, 2, 9)


def test_same_object_landed_twice_loads_once(home):
    s = settings(home)
    lake = Lake.open(s)
    body = jsonl(*(rec(shipment_id=f"shp_{i}") for i in range(50)))
    land(lake, "shipments/x.jsonl", body)
    first = run(s)
    lake.store.put("landing", "shipments/x.jsonl", body)  # same bytes, same key
    from lakeline.events import s3_event

    info = lake.store.head("landing", "shipments/x.jsonl")
    for _ in range(3):  # duplicated events, as S3 may deliver
        lake.ingest_queue.send(orjson.dumps(s3_event("landing", "shipments/x.jsonl", info.size, info.etag)).decode())
    second = run(s)
    assert (first["loaded"], second["loaded"], second["skipped_objects"]) == (50, 0, 3)
    assert query(lake, "SELECT count(*) FROM silver.shipments") == [(50,)]


def test_changed_content_under_the_same_key_is_a_new_object(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/x.jsonl", jsonl(rec(shipment_id="v1")))
    run(s)
    land(lake, "shipments/x.jsonl", jsonl(rec(shipment_id="v2"), rec(shipment_id="v2b")))
    run(s)
    assert query(lake, "SELECT count(*) FROM silver.shipments") == [(3,)]


def test_json_array_with_bom_and_non_object_elements(home):
    s = settings(home)
    lake = Lake.open(s)
    body = b"\xef\xbb\xbf" + orjson.dumps([rec(shipment_id="a"), 42, rec("invoice_lines")])
    land(lake, "shipments/arr.json", body)
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (2, 1)
    assert query(lake, "SELECT line_no, reason_code FROM quarantine.rejects") == [(2, "NOT_AN_OBJECT")]
    assert query(lake, "SELECT _source.line_no FROM silver.invoice_lines") == [(3,)]


def test_malformed_json_array_goes_to_error_zone_and_notifies(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/broken.json", b'[{"record_type": "shipments",')
    run(s)
    assert lake.store.exists("error", "objects/shipments/broken.json")
    assert query(lake, "SELECT reason_code FROM quarantine.rejects") == [("MALFORMED_JSON",)]
    entry = lake.state.runs()[0]
    assert (entry["status"], entry["dropped"]) == ("FAILED", 1)
    assert "shipments/broken.json" in lake.notifier.sent()[0].message


def test_empty_and_zero_byte_objects_are_recorded(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/zero.jsonl", b"")
    land(lake, "shipments/blank.jsonl", b"\n \n\r\n")
    land(lake, "shipments/empty-array.json", b"[]")
    summary = run(s)
    assert summary["loaded"] == 0 and summary["failures"] == 0
    statuses = sorted((r["key"], r["status"], r["records"]) for r in lake.state.runs())
    assert statuses == [
        ("shipments/blank.jsonl", "EMPTY", 0),
        ("shipments/empty-array.json", "EMPTY", 0),
        ("shipments/zero.jsonl", "EMPTY", 0),
    ]


def test_many_chunks_keep_global_line_numbers_and_offsets(home):
    s = settings(home, ingest__chunk_bytes=1024)
    lake = Lake.open(s)
    lines = [orjson.dumps(rec(shipment_id=f"shp_{i:06d}")) for i in range(400)]
    lines[333] = b'{"broken'
    body = b"\n".join(lines) + b"\n"
    land(lake, "shipments/big.jsonl", body)
    summary = run(s)
    entry = lake.state.runs()[0]
    assert entry["chunks"] > 50
    assert (summary["loaded"], summary["rejected"]) == (399, 1)
    assert query(lake, "SELECT line_no, byte_offset FROM quarantine.rejects") == [(334, body.index(b'{"broken'))]
    assert query(lake, "SELECT count(DISTINCT _source.line_no), min(_source.line_no), max(_source.line_no) "
                       "FROM silver.shipments") == [(399, 1, 400)]


def test_redelivered_chunk_message_rewrites_instead_of_duplicating(home):
    s = settings(home, ingest__chunk_bytes=2048)
    lake = Lake.open(s)
    land(lake, "shipments/r.jsonl", jsonl(*(rec(shipment_id=f"s{i}") for i in range(100))))
    from lakeline.stages.ingest import Ingester

    # ingest only, then deliver every chunk message twice
    for m in lake.ingest_queue.receive(10):
        Ingester(lake, registry(lake.settings).route).handle_event(orjson.loads(m.body))
        lake.ingest_queue.delete(m.receipt_handle)
    bodies = [m.body for m in lake.transform_queue.peek(100)]
    for b in bodies:
        lake.transform_queue.send(b)
    run(s)
    assert query(lake, "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments") == [(100, 100)]


def test_poison_message_reaches_dlq_on_its_first_receive_and_batch_mates_load_once(home):
    """Not a chunk message: a MessageError, terminal, so it goes to the DLQ when it first fails
    (max_receive_count is for failures that may heal)."""
    s = settings(home, queue__max_receive_count=5)
    lake = Lake.open(s)
    land(lake, "shipments/good.jsonl", jsonl(*(rec(shipment_id=f"g{i}") for i in range(20))))
    lake.transform_queue.send('{"v": 1, "this is": "not a chunk message"}')
    summary = run(s)
    assert summary["failures"] == 1
    assert query(lake, "SELECT count(*) FROM silver.shipments") == [(20,)]
    assert lake.transform_queue.counts().total == 0
    dead = lake.transform_queue.dlq.peek(10)
    assert len(dead) == 1 and "not a chunk message" in dead[0].body
    # redrive and fail again: it comes back to the DLQ, nothing duplicates
    assert lake.transform_queue.dlq.redrive() == 1
    run(s)
    assert lake.transform_queue.dlq.counts().total == 1
    assert query(lake, "SELECT count(*) FROM silver.shipments") == [(20,)]


def test_partition_ready_events(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "shipments/e.jsonl", jsonl(rec(), rec(event_time="2026-01-06T00:00:00Z")))
    run(s)
    events = lake.state.events("silver_partition_ready")
    details = sorted((e["detail"]["record_type"], e["detail"]["dt"], e["detail"]["files_written"],
                      e["detail"]["silver_prefix"]) for e in events)
    assert details == [("shipments", "2026-01-05", 1, "shipments/dt=2026-01-05/"),
                       ("shipments", "2026-01-06", 1, "shipments/dt=2026-01-06/")]
    assert all(e["detail"]["silver_bucket"] == "silver" for e in events)


def test_unknown_pipeline_prefix_is_rejected_not_crashed(home):
    s = settings(home)
    lake = Lake.open(s)
    land(lake, "nosuch/f.jsonl", jsonl(rec()))
    summary = run(s)
    assert summary["failures"] == 0
    assert lake.store.exists("error", "objects/nosuch/f.jsonl")
    assert lake.state.runs()[0]["status"] == "FAILED"


def test_chunk_failing_while_its_batch_mates_overlap_loads_once_after_the_fix(home):
    """Chunks of a batch overlap (chunk i+1 starts before chunk i is published); a chunk that
    fails while publishing is retried alone and its neighbours load exactly once."""
    s = settings(home, queue__max_receive_count=2)
    lake = Lake.open(s)
    days = {"a": "2026-01-05", "b": "2026-01-07", "c": "2026-01-08"}
    for name, day in days.items():
        land(lake, f"shipments/{name}.jsonl", jsonl(*(
            rec(shipment_id=f"{name}{i}", event_time=f"{day}T10:00:00Z") for i in range(30))))
    # an object where b's partition directory must go: b cannot publish
    lake.store.put("silver", "shipments/dt=2026-01-07", b"in the way")
    calls: list[str] = []
    original_start, original_finish = Transformer.start, Transformer.finish

    def start(self, msg):
        calls.append(f"start {msg.key}")
        return original_start(self, msg)

    def finish(self, pending):
        calls.append(f"finish {pending.msg.key}")
        return original_finish(self, pending)

    Transformer.start, Transformer.finish = start, finish
    try:
        summary = run(s)
    finally:
        Transformer.start, Transformer.finish = original_start, original_finish
    assert calls[:6] == ["start shipments/a.jsonl", "start shipments/b.jsonl", "finish shipments/a.jsonl",
                         "start shipments/c.jsonl", "finish shipments/b.jsonl", "finish shipments/c.jsonl"]
    assert summary["failures"] == 2 and summary["loaded"] == 60
    assert "collides with a directory" in summary["errors"][0] or "prefix" in summary["errors"][0]
    assert lake.transform_queue.dlq.counts().total == 1
    lake.store.delete("silver", "shipments/dt=2026-01-07")
    assert lake.transform_queue.dlq.redrive() == 1
    assert run(s)["loaded"] == 30
    assert query(lake, "SELECT CAST(dt AS VARCHAR), count(*), count(DISTINCT shipment_id) "
                       "FROM silver.shipments GROUP BY 1 ORDER BY 1") == [
        ("2026-01-05", 30, 30), ("2026-01-07", 30, 30), ("2026-01-08", 30, 30)]


def test_two_workers_load_everything_once(home):
    s = settings(home, ingest__chunk_bytes=4096)
    lake = Lake.open(s)
    for f in range(6):
        land(lake, f"shipments/f{f}.jsonl", jsonl(*(rec(shipment_id=f"f{f}-{i}") for i in range(300))))
    summary = run(s, workers=2)
    assert summary["loaded"] == 1800
    assert query(lake, "SELECT count(*), count(DISTINCT shipment_id) FROM silver.shipments") == [(1800, 1800)]


def test_count_records_handles_blank_and_whitespace_lines():
    assert count_records(b"") == 0
    assert count_records(b"a\nb\n") == 2
    assert count_records(b"a\nb") == 2
    assert count_records(b"\n\na\n\n\nb\n \n\t\r\n") == 2
    assert count_records(b"a\r\n\r\nb\r\n") == 2


def test_scan_block_counts_newlines_lines_and_records():
    """(newlines, lines, records): a last line without a newline is a line; blank and
    whitespace-only lines are lines but not records; a line merely starting with a space is
    a record."""
    assert scan_block(b"") == (0, 0, 0)
    assert scan_block(b"a\nb\n") == (2, 2, 2)
    assert scan_block(b"a\nb") == (1, 2, 2)
    assert scan_block(b"\n\na\n \n\t\r\nb") == (5, 6, 2)
    assert scan_block(b" a\n\tb\r\n") == (2, 2, 2)
    assert scan_block(b"\r\n") == (1, 1, 0)
