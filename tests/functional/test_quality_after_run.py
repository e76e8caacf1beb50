"""A streaming pipeline's quality rules (for shipments: specs §3) run by default on the partitions each run wrote."""

from __future__ import annotations

import json
from pathlib import Path

from lakeline.dq.after_run import MARGIN_S, STATE_TABLE, check_new_partitions
from lakeline.lake import Lake
from lakeline.pipelines.shipments import SHIPMENTS
from tests.functional.helpers import land, rec, run, settings

STATE_KEY = "after_run/shipments/checked_until"
RULES = SHIPMENTS.rulesets()


def _check(lake: Lake) -> dict | None:  # type: ignore[type-arg]
    return check_new_partitions(lake, "shipments", RULES)


def _lines(rows: list[dict]) -> bytes:  # type: ignore[type-arg]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def test_new_partitions_are_checked_once_and_failures_quarantined(home: Path) -> None:
    s = settings(home)
    lake = Lake.open(s)
    good = [rec(shipment_id=f"s{i}", weight_kg=5.0, event_time="2026-01-05T10:00:00Z") for i in range(3)]
    bad = [rec(shipment_id="t1", weight_kg=250.0, event_time="2026-01-06T10:00:00Z")]
    land(lake, "shipments/a.jsonl", _lines(good + bad))
    summary = run(s)
    [quality] = summary["quality"]
    assert (quality["pipeline"], quality["status"], quality["partitions"]) == ("shipments", "FAILED", 2)
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

    assert run(s)["quality"] == []  # nothing new: nothing checked again
    land(lake, "shipments/b.jsonl", _lines([rec(shipment_id="s9", weight_kg=1.0, event_time="2026-01-05T11:00:00Z")]))
    [again] = run(s)["quality"]
    assert (again["partitions"], again["failed"], again["status"]) == (1, [], "SUCCEEDED")  # only the partition the run wrote


def test_the_check_can_be_turned_off(home: Path) -> None:
    s = settings(home, quality__after_run=False)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", _lines([rec(shipment_id="x", weight_kg=999.0)]))
    assert run(s)["quality"] == []
    assert not (home / "zones" / "silver" / "_quarantine").exists()


def test_passes_are_capped_by_rows_and_give_the_same_results(home: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With at most 3 rows per grouped pass, partitions of 3, 2 and 1 rows take 2 passes
    ([3 rows], [2 + 1 rows]) and every partition gets the result of one pass over all."""
    from lakeline.dq import partitions as expectations

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
        one = expectations.run_expectations_many(lake, "shipments", dts, "one", RULES["shipments"], con=con)
        passes: list[list[str]] = []
        real = expectations.evaluate_groups

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            passes.append(list(kwargs["groups"]))
            return real(*args, **kwargs)

        monkeypatch.setattr(expectations, "evaluate_groups", counted)
        monkeypatch.setattr(expectations, "GROUP_PASS_ROWS", 3)
        capped = expectations.run_expectations_many(lake, "shipments", dts, "one", RULES["shipments"], con=con)
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


def _ready(lake: Lake, at: float, dt: str, record_type: str = "shipments") -> None:
    """A partition-ready event written now but keyed at ``at`` (emitted then, committed late)."""
    from lakeline.ports.state import EVENTS

    lake.state.put(EVENTS, f"{at:017.6f}#late-{dt}", {
        "detail-type": "silver_partition_ready", "id": f"late-{dt}",
        "detail": {"record_type": record_type, "dt": dt}})


def test_partitions_come_from_the_event_log_and_late_commits_are_not_missed(home: Path) -> None:
    import time

    s = settings(home, quality__after_run=False)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", _lines([
        rec(shipment_id="s1", weight_kg=5.0, event_time="2026-01-05T10:00:00Z"),
        rec(shipment_id="s2", weight_kg=5.0, event_time="2026-01-06T10:00:00Z")]))
    run(s)  # writes both partitions; the check is off
    lake = Lake.open(settings(home))
    first = _check(lake)
    assert first is not None and first["partitions"] == 2
    # a Parquet file put into silver by hand has no event: not a partition a run wrote
    some = next(i.key for i in lake.store.list("silver", "shipments/dt=2026-01-05/"))
    lake.store.copy("silver", some, "silver", "shipments/dt=2026-01-09/by-hand.parquet")
    assert _check(lake) is None
    # an event keyed a minute ago (inside the margin) but committed after the last check
    _ready(lake, time.time() - 60, "2026-01-06")
    late = _check(lake)
    assert late is not None and late["partitions"] == 1 and late["failed"] == []
    assert _check(lake) is None  # remembered: not checked twice
    place = lake.state.get(STATE_TABLE, STATE_KEY)
    assert place is not None and set(place.data) == {"event_mark", "seen"}
    assert any(k.endswith("#late-2026-01-06") for k in place.data["seen"])
    # older than the margin when the place was saved: behind the mark, so never read
    _ready(lake, time.time() - MARGIN_S - 60, "2026-01-05")
    assert _check(lake) is None


def test_a_place_saved_by_an_older_lakeline_is_a_time(home: Path) -> None:
    import time

    lake = Lake.open(settings(home))
    lake.state.put(STATE_TABLE, "after_run/checked_until", {"until": time.time() - 30})  # the old, global key
    _ready(lake, time.time() - 40, "2026-01-05")  # before the saved time: checked then
    _ready(lake, time.time() - 20, "2026-01-07")  # after it
    _ready(lake, time.time() - 10, "2026-01-08", record_type="no_such_type")
    _ready(lake, time.time() - 5, "2026-01-09")  # its partition was deleted since: skipped
    for dt in ("2026-01-05", "2026-01-07"):
        lake.store.put("silver", f"shipments/dt={dt}/part-x.parquet", _parquet(dt))
    result = _check(lake)
    assert result is not None and result["partitions"] == 1
    results = home / "zones" / "gold" / "_quality" / "results" / "shipments"
    assert sorted(p.name for p in results.iterdir()) == ["dt=2026-01-07"]


def _parquet(dt: str) -> bytes:
    """One valid shipments row of day ``dt`` as Parquet bytes (the silver columns)."""
    import io
    from datetime import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "record_type": ["shipments"], "event_time": pa.array([datetime.fromisoformat(f"{dt}T10:00:00+00:00")]),
        "shipment_id": ["s1"], "origin": ["SZX"], "destination": ["SEA"], "carrier": ["UPS"],
        "weight_kg": [1.5]})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()
