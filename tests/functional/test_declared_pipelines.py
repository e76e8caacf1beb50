"""Declared pipelines (HOME/pipelines/NAME.toml): CSV, JSON lines and Parquet sources, routing,
types, required fields, keys, schema evolution, Iceberg, and the same stages as shipments."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeline.config import Settings
from lakeline.lake import Lake, init_home
from lakeline.pipelines.registry import registry
from lakeline.stages import fastpath
from lakeline.stages.messages import ChunkMessage
from lakeline.tables.iceberg import load_table
from tests.functional.helpers import land, query, run, settings

ORDERS = """
format = "csv"
time_field = "ordered_at"
[csv]
delimiter = ";"
decimal = ","
date_format = "%d/%m/%Y"
[tables.orders]
key = ["order_id"]
fields = [
  { name = "order_id", type = "int64", required = true },
  { name = "ordered_at", type = "timestamp" },
  { name = "customer", column = "Customer Name" },
  { name = "amount", type = "decimal(10,2)" },
  { name = "paid", type = "bool" },
  { name = "ship_date", type = "date" },
]
"""
HEADER = "order_id;ordered_at;Customer Name;amount;paid;ship_date\n"


def declare(s: Settings, name: str, text: str) -> None:
    folder = s.home / "pipelines"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.toml").write_text(text)


def rejects(lake: Lake) -> list[tuple[Any, ...]]:
    return query(lake, "SELECT key, line_no, byte_offset, reason_code, message, raw FROM quarantine.rejects "
                       "ORDER BY key, line_no")


def lake_with(home: Path, name: str, text: str, **overrides: Any) -> tuple[Settings, Lake]:
    init_home(home)
    s = settings(home, **overrides)
    declare(s, name, text)
    return s, Lake.open(s)


# ---- CSV ---------------------------------------------------------------------------------------
def test_csv_loads_typed_rows_and_rejects_bad_values_with_their_line_and_offset(home: Path) -> None:
    s, lake = lake_with(home, "orders", ORDERS)
    body = (HEADER + '1;2026-01-05T10:00:00Z;"Ann; Smith";12,50;true;06/01/2026\n'
            "2;2026-01-05T11:00:00Z;Bob;3,999;false;07/01/2026\n"  # 3 decimals: not decimal(10,2)
            "3;not a time;Cy;1,00;true;08/01/2026\n"
            "1;2026-01-06T09:00:00Z;Dup;2,00;true;09/01/2026\n"     # order_id 1 again
            ';2026-01-06T09:00:00Z;NoId;2,00;true;09/01/2026\n'     # required order_id empty
            '4;2026-01-06T09:00:00Z;"multi\nline";5;yes;10/01/2026\n'
            "5;2026-01-07T09:00:00Z;short\n"                        # too few fields
            '6;2026-01-07T09:00:00Z;"open;1;true;11/01/2026\n')     # a quote never closed
    land(lake, "orders/2026-01-07/a.csv", body.encode())
    summary = run(s)
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 6, 0)
    rows = query(lake, "SELECT order_id, ordered_at, customer, amount, paid, ship_date, dt, _source.line_no "
                       "FROM silver.orders ORDER BY order_id")
    assert rows == [
        (1, datetime(2026, 1, 5, 10, tzinfo=UTC), "Ann; Smith", Decimal("12.50"), True, date(2026, 1, 6),
         date(2026, 1, 5), 2),
        (4, datetime(2026, 1, 6, 9, tzinfo=UTC), "multi\nline", Decimal("5.00"), True, date(2026, 1, 10),
         date(2026, 1, 6), 7)]
    lines = body.encode().split(b"\n")
    offset = [sum(len(x) + 1 for x in lines[:i]) for i in range(len(lines))]
    key = "orders/2026-01-07/a.csv"
    assert rejects(lake) == [
        (key, 3, offset[2], "TYPE_ERROR", "amount: 3,999 is not decimal(10,2)", lines[2].decode()),
        (key, 4, offset[3], "TIMESTAMP_ERROR", "ordered_at not a time is not a timestamp in years 0001-9999",
         lines[3].decode()),
        (key, 5, offset[4], "DUPLICATE_FAILURE", "duplicate key order_id=1: first at line 2", lines[4].decode()),
        (key, 6, offset[5], "NULL_VALUE_ERROR", "order_id is missing", lines[5].decode()),
        (key, 9, offset[8], "SCHEMA_ERROR", "expected 6 fields, found 3", lines[8].decode()),
        (key, 10, offset[9], "SCHEMA_ERROR",
         "line 10: a quote opened in field 3 is never closed", lines[9].decode()),
    ]
    run_entry = lake.state.runs(limit=1)[0]
    assert (run_entry["records"], run_entry["loaded"], run_entry["rejected"]) == (8, 2, 6)


def test_csv_header_missing_a_required_column_or_holding_an_undeclared_one_refuses_the_file(home: Path) -> None:
    s, lake = lake_with(home, "orders", ORDERS.replace('format = "csv"', 'format = "csv"\non_unknown_field = "reject"'))
    land(lake, "orders/a.csv", b"ordered_at;amount\n2026-01-05T10:00:00Z;1\n")
    land(lake, "orders/b.csv", (HEADER.rstrip("\n") + ";note\n" + "7;2026-01-05T10:00:00Z;x;1;true;06/01/2026;n\n")
         .encode())
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (0, 0)
    assert [(k, r, m) for k, _, _, r, m, _ in rejects(lake)] == [
        ("orders/a.csv", "SCHEMA_ERROR", "line 1: the header lacks column(s) order_id "
                                         "(it has: ordered_at, amount)"),
        ("orders/b.csv", "SCHEMA_ERROR", "line 1: the header has undeclared column(s) note "
                                         "(the pipeline's on_unknown_field is reject)")]
    errors = sorted(p.name for p in (home / "zones" / "error" / "objects" / "orders").iterdir())
    assert errors == ["a.csv", "b.csv"]  # the files are kept whole in the error zone


def test_csv_undeclared_column_is_added_and_recorded_in_the_tables_history(home: Path) -> None:
    s, lake = lake_with(home, "orders", ORDERS.replace('format = "csv"', 'format = "csv"\non_unknown_field = "add"'))
    land(lake, "orders/a.csv", (HEADER + "1;2026-01-05T10:00:00Z;x;1;true;06/01/2026\n").encode())
    run(s)
    land(lake, "orders/b.csv", (HEADER.rstrip("\n") + ";note\n" + "2;2026-01-05T10:00:00Z;y;2;true;06/01/2026;hi\n")
         .encode())
    run(s)
    assert query(lake, "SELECT order_id, note FROM silver.orders ORDER BY order_id") == [(1, None), (2, "hi")]
    described = registry(s).get("orders").describe_lake(lake)  # type: ignore[attr-defined]
    assert described["tables"][0]["added"] == [{"name": "note", "type": "string"}]
    from lakeline.stages.evolution import history

    [version] = history(lake, "orders", "orders")
    assert (version["version"], version["added"]) == (2, ["note"])
    assert version["source"].startswith("orders/b.csv#")


def test_csv_without_header_in_another_encoding(home: Path) -> None:
    text = ORDERS.replace('delimiter = ";"', 'delimiter = ";"\nheader = false\nencoding = "latin-1"')
    s, lake = lake_with(home, "orders", text)
    land(lake, "orders/a.csv", "1;2026-01-05T10:00:00Z;Zoë Müller;1;true;06/01/2026\n2;x;é;1;true;06/01/2026\n"
         .encode("latin-1"))
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (1, 1)
    assert query(lake, "SELECT customer FROM silver.orders") == [("Zoë Müller",)]
    [(_, line, offset, reason, _, raw)] = rejects(lake)
    assert (line, offset, reason, raw) == (2, 52, "TIMESTAMP_ERROR", "2;x;é;1;true;06/01/2026")  # the file's bytes


def _snapshot(lake: Lake, table: str) -> list[tuple[Any, ...]]:
    return query(lake, f"SELECT * EXCLUDE (_source), _source.line_no FROM silver.{table} ORDER BY ALL")


def test_clean_csv_takes_the_fast_path_with_the_exact_paths_rows(home: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [f"{i};2026-01-0{1 + i % 5}T10:00:00Z;c{i};{i},5{i % 10};{'true' if i % 2 else 'false'};"
             f"0{1 + i % 9}/02/2026" for i in range(2000)]
    body = (HEADER + "\n".join(lines) + "\n").encode()
    tried: list[int] = []
    original = fastpath.FastPath.write

    def spy(self: fastpath.FastPath, msg: ChunkMessage, *args: Any, **kwargs: Any) -> Any:
        out = original(self, msg, *args, **kwargs)
        tried.append(0 if out is None else 1)
        return out

    monkeypatch.setattr(fastpath.FastPath, "write", spy)
    snaps = []
    for fast in (True, False):
        s, lake = lake_with(tmp_path / f"l{fast}", "orders", ORDERS, transform__fast_path=fast)
        land(lake, "orders/a.csv", body)
        assert run(s)["loaded"] == 2000
        snaps.append(_snapshot(lake, "orders"))
    assert tried == [1]  # the fast path ran once (only when on) and kept its result
    assert snaps[0] == snaps[1] and len(snaps[0]) == 2000
    assert snaps[0][0][:4] == (0, datetime(2026, 1, 1, 10, tzinfo=UTC), "c0", Decimal("0.50"))


# ---- JSON lines: routing, unknown fields --------------------------------------------------------
EVENTS = """
format = "jsonl"
route_field = "kind"
time_field = "at"
on_unknown_field = "{policy}"
[tables.clicks]
route = "click"
fields = [{{ name = "kind" }}, {{ name = "at", type = "timestamp" }}, {{ name = "page", required = true }}]
[tables.buys]
route = "buy"
key = ["order"]
fields = [{{ name = "kind" }}, {{ name = "at", type = "timestamp" }}, {{ name = "order", type = "int64" }},
          {{ name = "total", type = "float64" }}]
"""


def jsonl(*rows: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


@pytest.mark.parametrize("policy", ["ignore", "add", "reject"])
def test_jsonl_routes_records_to_their_tables_and_applies_the_unknown_field_policy(home: Path, policy: str) -> None:
    s, lake = lake_with(home, "events", EVENTS.format(policy=policy))
    land(lake, "events/a.jsonl", jsonl(
        {"kind": "click", "at": "2026-01-05T10:00:00Z", "page": "/"},
        {"kind": "buy", "at": "2026-01-05T11:00:00Z", "order": 7, "total": 9.5, "coupon": "X"},
        {"kind": "click", "at": "2026-01-05T12:00:00Z"},                # page is required
        {"kind": "wave", "at": "2026-01-05T12:00:00Z"},                 # routes nowhere
        {"kind": "buy", "at": "2026-01-06T10:00:00Z", "order": 7, "total": 1.0}))  # duplicate order
    summary = run(s)
    reasons = [(line, r) for _, line, _, r, _, _ in rejects(lake)]
    assert query(lake, "SELECT page, dt FROM silver.clicks") == [("/", date(2026, 1, 5))]
    if policy == "reject":
        assert (summary["loaded"], summary["rejected"]) == (2, 3)
        assert reasons == [(2, "SCHEMA_ERROR"), (3, "NULL_VALUE_ERROR"), (4, "SCHEMA_ERROR")]
        msg = query(lake, "SELECT message FROM quarantine.rejects WHERE line_no = 2")
        assert msg == [("undeclared field(s): coupon",)]
        # the rejected record is not the key's first occurrence: line 5 loads
        assert query(lake, "SELECT total FROM silver.buys") == [(1.0,)]
        return
    assert (summary["loaded"], summary["rejected"]) == (2, 3)
    assert reasons == [(3, "NULL_VALUE_ERROR"), (4, "SCHEMA_ERROR"), (5, "DUPLICATE_FAILURE")]
    buys = query(lake, "SELECT * EXCLUDE (_source, dt) FROM silver.buys")
    if policy == "add":
        assert buys == [("buy", datetime(2026, 1, 5, 11, tzinfo=UTC), 7, 9.5, "X")]
    else:
        assert buys == [("buy", datetime(2026, 1, 5, 11, tzinfo=UTC), 7, 9.5)]


def test_keep_the_latest_of_a_key_across_the_chunks_of_a_load(home: Path) -> None:
    text = EVENTS.format(policy="ignore").replace('time_field = "at"', 'time_field = "at"\non_duplicate = "latest"')
    s, lake = lake_with(home, "events", text, ingest__chunk_bytes=1024)
    rows = [{"kind": "buy", "at": f"2026-01-0{1 + i % 5}T10:00:00Z", "order": i % 40, "total": float(i)}
            for i in range(200)]
    land(lake, "events/a.jsonl", jsonl(*rows))
    summary = run(s)
    assert summary["chunks"] > 5  # a load of several chunks: deduplicated once, when all are done
    assert (summary["loaded"], summary["rejected"], summary["deduplicated"]) == (40, 0, 160)
    # the latest of each order: greatest time, then the last in the file
    expected = {}
    for i, r in enumerate(rows):
        best = expected.get(r["order"])
        if best is None or (r["at"], i) >= (best[0], best[1]):
            expected[r["order"]] = (r["at"], i, r["total"])
    got = dict(query(lake, "SELECT \"order\", total FROM silver.buys"))
    assert got == {k: v[2] for k, v in expected.items()}
    assert not list((home / "zones" / "tmp").rglob("*.parquet"))  # the staging is gone
    entry = lake.state.runs(limit=1)[0]
    assert (entry["loaded"], entry["deduplicated"], entry["status"]) == (40, 160, "COMPLETE")


def test_duplicates_across_chunks_are_rejected_with_their_line_and_offset(home: Path) -> None:
    s, lake = lake_with(home, "events", EVENTS.format(policy="ignore"), ingest__chunk_bytes=1024)
    body = jsonl(*({"kind": "buy", "at": "2026-01-05T10:00:00Z", "order": i % 50, "total": 1.0}
                   for i in range(120)))
    land(lake, "events/a.jsonl", body)
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (50, 70)
    found = rejects(lake)
    lines = body.split(b"\n")
    assert [r[1] for r in found] == list(range(51, 121))
    line, offset, reason, message, raw = found[0][1:]
    assert (reason, message) == ("DUPLICATE_FAILURE", "duplicate key order=0: first at line 1")
    assert offset == sum(len(x) + 1 for x in lines[:50]) and raw == lines[50].decode()
    # a redelivered last chunk finds the load published: nothing is written twice
    assert run(s)["loaded"] == 0 and query(lake, "SELECT count(*) FROM silver.buys") == [(50,)]


# ---- Parquet, Iceberg, unpartitioned ------------------------------------------------------------
def test_parquet_source_by_row_groups_with_type_checks_and_evolution(home: Path, tmp_path: Path) -> None:
    text = """
format = "parquet"
time_field = "at"
on_unknown_field = "add"
[tables.readings]
fields = [{ name = "id", type = "int64", required = true }, { name = "at", type = "timestamp" },
          { name = "value", type = "decimal(6,1)" }, { name = "unit" }]
"""
    s, lake = lake_with(home, "readings", text, ingest__chunk_bytes=1024)
    table = pa.table({"id": list(range(1, 11)), "at": pa.array([datetime(2026, 1, 5, i, tzinfo=UTC)
                                                                for i in range(10)]),
                      "value": ["1.5", "2", "x", "4.25", None, "6", "7", "8", "9", "10"],
                      "unit": ["C"] * 10, "sensor": ["s1"] * 10})
    path = tmp_path / "r.parquet"
    pq.write_table(table, path, row_group_size=2)
    lake.store.put_file("landing", "readings/r.parquet", path)
    from lakeline.landing import announce

    announce(lake, "readings/r.parquet")
    summary = run(s)
    assert summary["chunks"] >= 2
    assert (summary["loaded"], summary["rejected"]) == (8, 2)
    rows = query(lake, "SELECT id, value, sensor, _source.line_no FROM silver.readings ORDER BY id")
    assert rows[:3] == [(1, Decimal("1.5"), "s1", 1), (2, Decimal("2.0"), "s1", 2), (5, None, "s1", 5)]
    assert [(line, r, m) for _, line, off, r, m, _ in rejects(lake)] == [
        (3, "TYPE_ERROR", "value: x is not decimal(6,1)"), (4, "TYPE_ERROR", "value: 4.25 is not decimal(6,1)")]


def test_a_declared_table_may_be_iceberg_and_unpartitioned(home: Path) -> None:
    text = """
format = "jsonl"
table_format = "iceberg"
[tables.notes]
key = "id"
fields = [{ name = "id", type = "int64" }, { name = "text" }]
"""
    s, lake = lake_with(home, "notes", text)
    land(lake, "notes/a.jsonl", jsonl({"id": 1, "text": "a"}, {"id": 2, "text": "b"}, {"id": 1, "text": "c"}))
    summary = run(s)
    assert (summary["loaded"], summary["rejected"]) == (2, 1)
    ice = load_table(lake, "silver.notes")
    assert sorted(ice.scan().to_arrow().column("text").to_pylist()) == ["a", "b"]
    assert list(ice.spec().fields) == []  # no time field: not partitioned
    run(s)  # nothing new
    assert len(load_table(lake, "silver.notes").snapshots()) == 1
