"""The specs §3 expectations run by default on the shipments partitions each run wrote."""

from __future__ import annotations

import json
from pathlib import Path

from lakeline.lake import Lake
from tests.functional.helpers import land, rec, run, settings


def _lines(rows: list[dict]) -> bytes:  # type: ignore[type-arg]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def test_new_partitions_are_checked_once_and_failures_quarantined(home: Path) -> None:
    s = settings(home)
    lake = Lake.open(s)
    good = [rec(shipment_id=f"s{i}", weight_kg=5.0, event_time="2026-01-05T10:00:00Z") for i in range(3)]
    bad = [rec(shipment_id="t1", weight_kg=250.0, event_time="2026-01-06T10:00:00Z")]
    land(lake, "shipments/a.jsonl", _lines(good + bad))
    summary = run(s)
    quality = summary["quality"]
    assert quality["partitions"] == 2
    assert [(f["record_type"], f["dt"], f["failed"]) for f in quality["failed"]] == [
        ("shipments", "2026-01-06", ["expect_column_values_to_be_between"])]
    run_id = quality["run_id"]
    gold = home / "zones" / "gold" / "_quality" / "results" / "shipments"
    assert json.loads((gold / "dt=2026-01-05" / f"run_{run_id}.json").read_text())["success"] is True
    assert (gold / "dt=2026-01-06" / f"run_{run_id}.html").exists()
    marker = home / "zones" / "silver" / "_quarantine" / "shipments" / "dt=2026-01-06" / f"{run_id}.json"
    assert json.loads(marker.read_text())["failed_expectations"][0]["kwargs"]["column"] == "weight_kg"
    note = json.loads((s.outbox_dir / "notifications.jsonl").read_text().splitlines()[-1])
    assert note["subject"] == "Data Quality check failed" and "dt=2026-01-06" in note["message"]

    assert run(s)["quality"] is None  # nothing new: nothing checked again
    land(lake, "shipments/b.jsonl", _lines([rec(shipment_id="s9", weight_kg=1.0, event_time="2026-01-05T11:00:00Z")]))
    again = run(s)["quality"]
    assert (again["partitions"], again["failed"]) == (1, [])  # only the partition the run wrote


def test_the_check_can_be_turned_off(home: Path) -> None:
    s = settings(home, quality__after_run=False)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", _lines([rec(shipment_id="x", weight_kg=999.0)]))
    assert run(s)["quality"] is None
    assert not (home / "zones" / "silver" / "_quarantine").exists()


def test_passes_are_capped_by_rows_and_give_the_same_results(home: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With at most 3 rows per grouped pass, partitions of 3, 2 and 1 rows take 2 passes
    ([3 rows], [2 + 1 rows]) and every partition gets the result of one pass over all."""
    from lakeline.dq import engine
    from lakeline.quality import expectations

    s = settings(home, quality__after_run=False)
    lake = Lake.open(s)
    rows = [rec(shipment_id=f"s{i}", weight_kg=5.0, event_time=f"2026-01-0{d}T10:00:00Z")
            for i, d in enumerate([5, 5, 6, 6, 7])]
    rows.append(rec(shipment_id="s0", weight_kg=500.0, event_time="2026-01-05T11:00:00Z"))
    land(lake, "shipments/a.jsonl", _lines(rows))
    run(s)
    from lakeline.sql import connect

    dts = ["2026-01-05", "2026-01-06", "2026-01-07"]
    con = connect(lake)
    try:
        one = expectations.run_expectations_many(lake, "shipments", dts, "one", con=con)
        passes: list[list[str]] = []
        real = engine.evaluate_groups

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            passes.append(list(kwargs["groups"]))
            return real(*args, **kwargs)

        monkeypatch.setattr(engine, "evaluate_groups", counted)
        monkeypatch.setattr(expectations, "GROUP_PASS_ROWS", 3)
        capped = expectations.run_expectations_many(lake, "shipments", dts, "one", con=con)
    finally:
        con.close()
    assert passes == [["2026-01-05"], ["2026-01-06", "2026-01-07"]]
    assert list(capped) == dts
    for dt in dts:
        assert {k: v for k, v in capped[dt].items() if k != "generated_at"} == {
            k: v for k, v in one[dt].items() if k != "generated_at"}
    assert [one[dt]["success"] for dt in dts] == [False, True, True]
    assert one["2026-01-05"]["statistics"]["rows"] == 3
    assert expectations._batches(["a", "b", "c"], {"a": 5, "b": 1, "c": 1}, 3) == [["a"], ["b", "c"]]
