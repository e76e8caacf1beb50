"""The check after a run takes what the written files' footers prove (rows, nulls, bounds) and
computes only the rest from the data (issue 18, part 3, lever b): its results are the figures
the full data pass gives, on partitions with failures of every rule kind and on a partition
whose older files lack a column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lakeline.dq import engine
from lakeline.dq.partitions import _local_files
from lakeline.dq.rules import Ruleset, parse_ruleset
from lakeline.lake import Lake
from lakeline.pipelines.shipments import SHIPMENTS
from lakeline.sql import connect
from tests.functional.helpers import land, rec, run, settings

RULES = SHIPMENTS.rulesets()
DTS = ["2026-01-05", "2026-01-06", "2026-01-07"]


def _lines(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _comparable(results: dict[str, engine.DqResult]) -> dict[str, Any]:
    return {dt: {k: v for k, v in r.to_dict().items() if k != "generated_at"} for dt, r in results.items()}


def _both(lake: Lake, table: str, ruleset: Ruleset) -> tuple[dict[str, Any], dict[str, Any]]:
    files = _local_files(lake, table, DTS)
    assert files is not None and set(files) == set(DTS)
    con = connect(lake)
    try:
        args: dict[str, Any] = {"column": "dt", "groups": DTS, "sources": dict.fromkeys(DTS, "s"), "run_id": "r"}
        with_footers = engine.evaluate_groups(con, f'silver."{table}"', ruleset, files=files, **args)
        data_only = engine.evaluate_groups(con, f'silver."{table}"', ruleset, **args)
    finally:
        con.close()
    return _comparable(with_footers), _comparable(data_only)


def test_footer_figures_equal_the_data_pass_on_failing_partitions(home: Path) -> None:
    s = settings(home, quality__after_run=False)
    lake = Lake.open(s)
    day = "2026-01-0{}T10:00:00Z"
    rows = [rec(shipment_id=f"s{i}", weight_kg=float(i % 150), event_time=day.format(5 + i % 3)) for i in range(300)]
    rows += [rec(shipment_id="s3", weight_kg=3.0, event_time=day.format(5)),  # a duplicate id (s3 is a 5th)
             rec(shipment_id=None, weight_kg=None, event_time=day.format(6)),  # nulls
             rec(shipment_id="big", weight_kg=250.0, event_time=day.format(7)),  # out of bounds
             rec(shipment_id="neg", weight_kg=-0.5, event_time=day.format(7))]
    land(lake, "shipments/a.jsonl", _lines(rows[:200]))
    land(lake, "shipments/b.jsonl", _lines(rows[200:]))  # two files per partition
    land(lake, "shipments/c.jsonl", _lines([rec("invoice_lines", quantity=q, event_time=day.format(5 + q % 3))
                                            for q in (0, 5, 2000, 7)]))
    run(s)
    footers, data = _both(lake, "shipments", RULES["shipments"])
    assert footers == data
    failed = {dt: sorted(r["expectation_type"] for r in v["results"] if not r["success"]) for dt, v in footers.items()}
    assert failed == {
        "2026-01-05": ["expect_column_values_to_be_unique"],
        "2026-01-06": ["expect_column_values_to_not_be_null"],
        "2026-01-07": ["expect_column_values_to_be_between"],
    }
    footers, data = _both(lake, "invoice_lines", RULES["invoice_lines"])
    assert footers == data
    # quantities 0 (a 5th) and 2000 (a 7th) are out of bounds, 7 (a 6th) is not
    assert [footers[dt]["success"] for dt in DTS] == [False, True, False]


def test_footers_decide_what_they_prove_and_the_data_pass_only_the_rest(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On clean partitions only the uniqueness rule reads data (its column alone, by hashes)."""
    s = settings(home, quality__after_run=False)
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", _lines([rec(shipment_id=f"s{i}", event_time=f"2026-01-0{5 + i % 3}T10:00:00Z")
                                            for i in range(90)]))
    run(s)
    seen: list[str] = []

    class Spy:
        def __init__(self, con: Any) -> None:
            self.con = con

        def execute(self, sql: str, *args: Any) -> Any:
            seen.append(sql)
            return self.con.execute(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.con, name)

    files = _local_files(lake, "shipments", DTS)
    con = connect(lake)
    try:
        results = engine.evaluate_groups(Spy(con), 'silver."shipments"', RULES["shipments"], column="dt",  # type: ignore[arg-type]
                                         groups=DTS, sources=dict.fromkeys(DTS, "s"), files=files)
    finally:
        con.close()
    assert all(r.success for r in results.values())
    data = [q for q in seen if "FROM silver" in q and "GROUP BY 1" in q]
    assert len(data) == 1 and "hash(\"shipment_id\")" in data[0] and "weight_kg" not in data[0]


def test_a_column_older_files_lack_is_counted_from_the_data(home: Path) -> None:
    """Schema evolution: a partition's older files lack a column, which the view reads as
    nulls; the footers do not count those rows, so the data pass does."""
    s = settings(home, quality__after_run=False, pipelines__shipments__on_unknown_field="add")
    lake = Lake.open(s)
    land(lake, "shipments/a.jsonl", _lines([rec(shipment_id=f"a{i}") for i in range(5)]))
    run(s)
    land(lake, "shipments/b.jsonl", _lines([rec(shipment_id=f"b{i}", note="x") for i in range(3)]))
    run(s)
    rules = parse_ruleset("n", [{"kind": "not_null", "column": "note"}, {"kind": "row_count", "min": 1}],
                          origin="test")
    files = _local_files(lake, "shipments", ["2026-01-05"])
    con = connect(lake)
    try:
        args: dict[str, Any] = {"column": "dt", "groups": ["2026-01-05"], "sources": {"2026-01-05": "s"}}
        a = _comparable(engine.evaluate_groups(con, 'silver."shipments"', rules, files=files, run_id="r", **args))
        b = _comparable(engine.evaluate_groups(con, 'silver."shipments"', rules, run_id="r", **args))
    finally:
        con.close()
    assert a == b
    assert a["2026-01-05"]["results"][0]["result"]["unexpected_count"] == 5
