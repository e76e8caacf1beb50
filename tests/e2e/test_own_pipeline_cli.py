"""A user's own feeds through the CLI: `pipeline new` from a sample, put, run, exact rows and
rejects, a model in gold — a CSV export and a JSON-lines stream lakeline has never seen."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.helpers import Cli

IN_PROCESS = True  # the commands run in this process (tests/e2e/conftest.py)


def test_a_csv_export_becomes_a_pipeline_from_a_sample_and_feeds_a_model(lake: Cli, tmp_path: Path) -> None:
    sample = tmp_path / "stock.csv"
    sample.write_text("SKU,Warehouse,On Hand,Counted At,Unit Cost\n"
                      "A-1,Leeds,12,2026-03-01 08:00:00,2.50\n"
                      'B-2,"York, North",0,2026-03-01 09:30:00,11.00\n'
                      "C-3,Leeds,7,2026-03-02 10:00:00,0.75\n")
    created = lake.json("pipeline", "new", "stock", "--sample", sample, "--key", "SKU", "--key", "Warehouse")
    path = Path(created["path"])
    assert path == lake.home / "pipelines" / "stock.toml" and path.read_text() == created["text"]
    assert 'time_field = "counted_at"' in created["text"] and 'key = ["sku", "warehouse"]' in created["text"]
    assert lake.json("pipeline", "validate") == {"valid": True, "checked": ["stock"], "problems": []}
    [listed] = [p for p in lake.json("pipeline", "list") if p["name"] == "stock"]
    assert (listed["kind"], listed["format"], listed["tables"]) == ("stream", "csv", ["silver.stock"])

    lake.ok("put", sample, "--pipeline", "stock")
    bad = tmp_path / "stock-bad.csv"
    bad.write_text("SKU,Warehouse,On Hand,Counted At,Unit Cost\n"
                   "D-4,Hull,many,2026-03-03 08:00:00,1.00\n"          # On Hand is not an integer
                   "E-5,Hull,3,yesterday,1.00\n"                       # not a time
                   "F-6,Hull,1,2026-03-03 08:00:00,2.00\n"
                   "F-6,Hull,2,2026-03-03 09:00:00,2.00\n")            # the key again
    lake.ok("put", bad, "--pipeline", "stock")
    (lake.home / "models").mkdir()
    (lake.home / "models" / "stock_value.sql").write_text(
        "-- value on hand per warehouse\n"
        "SELECT warehouse, sum(on_hand * unit_cost) AS value FROM silver.stock GROUP BY ALL ORDER BY ALL\n")
    summary = lake.json("run")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (4, 3, 0)
    [model] = summary["models"]
    assert (model["name"], model["status"], model["rows"]) == ("stock_value", "SUCCEEDED", 3)

    rows = lake.json("sql", "SELECT sku, warehouse, on_hand, counted_at, unit_cost, dt FROM silver.stock "
                            "ORDER BY sku")
    assert [(r["sku"], r["warehouse"], r["on_hand"], r["unit_cost"], r["dt"]) for r in rows] == [
        ("A-1", "Leeds", 12, 2.5, "2026-03-01"), ("B-2", "York, North", 0, 11.0, "2026-03-01"),
        ("C-3", "Leeds", 7, 0.75, "2026-03-02"), ("F-6", "Hull", 1, 2.0, "2026-03-03")]
    assert rows[0]["counted_at"] == "2026-03-01T08:00:00+00:00"
    rejects = lake.json("sql", "SELECT line_no, reason_code, message FROM quarantine.rejects ORDER BY line_no")
    assert rejects == [
        {"line_no": 2, "reason_code": "TYPE_ERROR", "message": "on_hand: many is not int64"},
        {"line_no": 3, "reason_code": "TIMESTAMP_ERROR",
         "message": "counted_at yesterday is not a timestamp in years 0001-9999"},
        {"line_no": 5, "reason_code": "DUPLICATE_FAILURE",
         "message": "duplicate key sku=F-6, warehouse=Hull: first at line 4"}]
    assert lake.json("sql", "SELECT * FROM gold.stock_value") == [
        {"warehouse": "Hull", "value": 2.0}, {"warehouse": "Leeds", "value": 35.25},
        {"warehouse": "York, North", "value": 0.0}]
    again = lake.json("run")
    assert again["models"] == []  # nothing changed: the model is up to date


def test_a_json_lines_stream_with_a_new_field_and_two_record_kinds(lake: Cli, tmp_path: Path) -> None:
    sample = tmp_path / "telemetry.jsonl"
    rows = [{"device": "d1", "ts": "2026-04-01T00:00:00Z", "temp": 21.5, "ok": True},
            {"device": "d2", "ts": "2026-04-01T00:05:00Z", "temp": 19.0, "ok": False}]
    sample.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lake.ok("pipeline", "new", "telemetry", "--sample", sample)
    text = (lake.home / "pipelines" / "telemetry.toml").read_text()
    assert 'format = "jsonl"' in text and 'time_field = "ts"' in text and 'on_unknown_field = "add"' in text

    later = tmp_path / "later.jsonl"
    later.write_text(json.dumps({"device": "d3", "ts": "2026-04-02T00:00:00Z", "temp": 18.0, "ok": True,
                                 "firmware": "1.2"}) + "\n"
                     + json.dumps({"device": "d4", "ts": "2026-04-02T00:00:00Z", "temp": "hot", "ok": True}) + "\n"
                     + "{not json\n")
    lake.ok("put", sample, later, "--pipeline", "telemetry")
    summary = lake.json("run")
    assert (summary["loaded"], summary["rejected"]) == (3, 2)
    got = lake.json("sql", "SELECT device, temp, ok, firmware FROM silver.telemetry ORDER BY device")
    assert got == [{"device": "d1", "temp": 21.5, "ok": True, "firmware": None},
                   {"device": "d2", "temp": 19.0, "ok": False, "firmware": None},
                   {"device": "d3", "temp": 18.0, "ok": True, "firmware": "1.2"}]
    shown = lake.json("pipeline", "show", "telemetry")
    [table] = shown["tables"]
    assert table["added"] == [{"name": "firmware", "type": "string"}]
    assert [v["added"] for v in table["history"]] == [["firmware"]]
    reasons = lake.json("sql", "SELECT line_no, reason_code FROM quarantine.rejects ORDER BY line_no")
    assert reasons == [{"line_no": 2, "reason_code": "TYPE_ERROR"}, {"line_no": 3, "reason_code": "MALFORMED_JSON"}]


def test_bad_pipeline_files_and_samples_exit_2_naming_the_file_and_key(lake: Cli, tmp_path: Path) -> None:
    folder = lake.home / "pipelines"
    folder.mkdir()
    (folder / "broken.toml").write_text('format = "csv"\n[tables.broken]\nfields = [{ name = "a", type = "integer" }]\n')
    err = lake.fails(2, "pipeline", "validate")
    assert err.strip() == (f"error: {folder / 'broken.toml'}: tables.broken.fields[0].type: unknown type 'integer'; "
                           "types: string, int64, float64, bool, date, timestamp, decimal(p,s)")
    err = lake.fails(2, "run")
    assert f"{folder / 'broken.toml'}: tables.broken.fields[0].type" in err
    (folder / "broken.toml").unlink()
    sample = tmp_path / "x.csv"
    sample.write_text("a,b\n1,2\n")
    err = lake.fails(2, "pipeline", "new", "shipments", "--sample", sample)
    assert "a pipeline named 'shipments' exists already" in err
    err = lake.fails(2, "pipeline", "new", "tracking_events", "--sample", sample)
    assert "the table silver.tracking_events is written by pipeline 'shipments'" in err
    assert not (folder / "tracking_events.toml").exists()
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"PAR1")
    err = lake.fails(2, "pipeline", "new", "empty", "--sample", empty)
    assert "cannot be read as parquet" in err and not (folder / "empty.toml").exists()
