"""Bad values in streaming records (issue 16, parts 3-5): non-finite numbers, a JSON-lines file
whose first line is an array, and a JSON object that repeats a key.

Each case runs on both transform paths (the fast path, the default, and the exact path with
``transform.fast_path = false``) and, where the format allows, in a JSON-array file too; the
figures are exact: rows loaded, rejects by line and reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lakeline.lake import Lake, init_home
from tests.faults.conftest import Case
from tests.functional.helpers import land, query, rec, run, settings

T = '"event_time":"2026-01-05T10:00:00Z"'
SHP = f'"record_type":"shipments",{T},"origin":"SZX","destination":"SEA","carrier":"UPS"'
GOOD = orjson.dumps(rec(shipment_id="good-1")).decode()
GOOD2 = orjson.dumps(rec(shipment_id="good-2")).decode()
NON_FINITE = ("1e400", "-1e400", "NaN", "Infinity", "-Infinity", '"nan"', '"inf"')


def _lake(tmp_path: Path, name: str, **overrides: Any) -> tuple[Any, Lake]:
    home = tmp_path / name
    init_home(home)
    s = settings(home, **overrides)
    return s, Lake.open(s)


def _rejects(lake: Lake) -> list[tuple[Any, ...]]:
    if not any(True for _ in lake.store.list("error", "rejects/")):
        return []
    return query(lake, "SELECT key, line_no, reason_code, message FROM quarantine.rejects "
                       "WHERE pipeline = 'shipments' ORDER BY key, line_no")


def _shipment_ids(lake: Lake) -> list[tuple[Any, ...]]:
    return query(lake, "SELECT _source.line_no, shipment_id, weight_kg FROM silver.shipments "
                       "ORDER BY _source.key, _source.line_no")


PATHS = pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "exact-path"])


@PATHS
def test_non_finite_numbers_in_json_lines_are_type_errors(tmp_path: Path, fault: Case, fast: bool) -> None:
    fault(f"non-finite weight_kg in JSON lines ({'fast' if fast else 'exact'} path)",
          expected="7 TYPE_ERROR rejects naming line and value, 2 rows load, no inf/nan in silver")
    s, lake = _lake(tmp_path, "lake", transform__fast_path=fast)
    key = "shipments/2026-01-05/nonfinite.jsonl"
    body = "\n".join([GOOD, *(f'{{{SHP},"shipment_id":"bad-{i}","weight_kg":{v}}}'
                              for i, v in enumerate(NON_FINITE)), GOOD2]) + "\n"
    land(lake, key, body.encode())
    summary = run(s)
    loaded = _shipment_ids(lake)
    rejected = _rejects(lake)
    fault.saw(f"loaded {summary['loaded']}, rejected {summary['rejected']}: "
              f"{sorted({r[2] for r in rejected})}")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 7, 0)
    assert loaded == [(1, "good-1", 1.5), (9, "good-2", 1.5)]
    shown = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "nan", "inf"]
    assert rejected == [(key, 2 + i, "TYPE_ERROR", f"weight_kg: {v} is not a finite float64")
                        for i, v in enumerate(shown)]
    assert query(lake, "SELECT count(*) FROM silver.shipments WHERE NOT isfinite(weight_kg)") == [(0,)]


def test_non_finite_numbers_in_a_json_array_are_type_errors_per_element(tmp_path: Path, fault: Case) -> None:
    fault("non-finite weight_kg in a JSON array file",
          expected="each such element a TYPE_ERROR at its index; the others load (not the whole file refused)")
    s, lake = _lake(tmp_path, "lake")
    key = "shipments/2026-01-05/nonfinite.json"
    body = "[" + ",".join([GOOD, *(f'{{{SHP},"shipment_id":"bad-{i}","weight_kg":{v}}}'
                                   for i, v in enumerate(NON_FINITE[:5])), GOOD2]) + "]"
    land(lake, key, body.encode())
    summary = run(s)
    rejected = _rejects(lake)
    fault.saw(f"loaded {summary['loaded']}, rejected {summary['rejected']}: {sorted({r[2] for r in rejected})}")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 5, 0)
    assert _shipment_ids(lake) == [(1, "good-1", 1.5), (7, "good-2", 1.5)]
    assert rejected == [(key, 2 + i, "TYPE_ERROR", f"weight_kg: {v} is not a finite float64")
                        for i, v in enumerate(["1e400", "-1e400", "NaN", "Infinity", "-Infinity"])]


@pytest.mark.parametrize("name", ["first-line-array.jsonl", "first-line-array.ndjson"])
def test_a_json_lines_file_whose_first_line_is_an_array_is_read_as_lines(
    tmp_path: Path, fault: Case, name: str
) -> None:
    fault(f"{name.rsplit('.', 1)[1]} file whose first line is [...]",
          expected="line 1 alone rejected NOT_AN_OBJECT, the other lines load")
    s, lake = _lake(tmp_path, "lake")
    key = f"shipments/2026-01-05/{name}"
    land(lake, key, f"[{GOOD}]\n{GOOD}\n{GOOD2}\n".encode())
    summary = run(s)
    rejected = _rejects(lake)
    fault.saw(f"loaded {summary['loaded']}, rejected {summary['rejected']}: {[(r[1], r[2]) for r in rejected]}")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 1, 0)
    assert _shipment_ids(lake) == [(2, "good-1", 1.5), (3, "good-2", 1.5)]
    assert rejected == [(key, 1, "NOT_AN_OBJECT", "line is JSON but not an object")]


def test_a_json_file_that_is_an_array_is_still_one_document(tmp_path: Path, fault: Case) -> None:
    fault(".json file holding one array", expected="read as an array, as before: every element loads")
    s, lake = _lake(tmp_path, "lake")
    land(lake, "shipments/2026-01-05/array.json", f"[{GOOD},\n{GOOD2}]\n".encode())
    summary = run(s)
    fault.saw(f"loaded {summary['loaded']}, rejected {summary['rejected']}")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 0, 0)
    assert _shipment_ids(lake) == [(1, "good-1", 1.5), (2, "good-2", 1.5)]


@PATHS
def test_a_repeated_key_in_a_json_line_is_a_duplicate_field_reject(tmp_path: Path, fault: Case, fast: bool) -> None:
    fault(f'{{"a": 1, "a": 2}} in JSON lines ({"fast" if fast else "exact"} path)',
          expected="DUPLICATE_FIELD reject naming the key and line, not first-wins")
    s, lake = _lake(tmp_path, "lake", transform__fast_path=fast)
    key = "shipments/2026-01-05/dup.jsonl"
    land(lake, key, "\n".join([
        GOOD,
        f'{{{SHP},"shipment_id":"first","shipment_id":"second","weight_kg":1}}',
        f'{{{SHP},"shipment_id":"w","weight_kg":1,"weight_kg":2,"origin":"X"}}',
        GOOD2,
    ]).encode() + b"\n")
    summary = run(s)
    rejected = _rejects(lake)
    fault.saw(f"loaded {summary['loaded']}, rejected {summary['rejected']}: {[(r[1], r[2]) for r in rejected]}")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 2, 0)
    assert _shipment_ids(lake) == [(1, "good-1", 1.5), (4, "good-2", 1.5)]
    assert rejected == [
        (key, 2, "DUPLICATE_FIELD", "the object repeats key(s): shipment_id"),
        (key, 3, "DUPLICATE_FIELD", "the object repeats key(s): origin, weight_kg"),
    ]


def test_a_repeated_key_in_a_json_array_element_is_a_duplicate_field_reject(tmp_path: Path, fault: Case) -> None:
    fault('{"a": 1, "a": 2} in a JSON array file', expected="DUPLICATE_FIELD reject at the element, not last-wins")
    s, lake = _lake(tmp_path, "lake")
    key = "shipments/2026-01-05/dup.json"
    land(lake, key, ("[" + ",".join([
        GOOD, f'{{{SHP},"shipment_id":"first","shipment_id":"second"}}', GOOD2]) + "]").encode())
    summary = run(s)
    rejected = _rejects(lake)
    fault.saw(f"loaded {summary['loaded']}, rejected {summary['rejected']}: {[(r[1], r[2]) for r in rejected]}")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 1, 0)
    assert _shipment_ids(lake) == [(1, "good-1", 1.5), (3, "good-2", 1.5)]
    assert rejected == [(key, 2, "DUPLICATE_FIELD", "the object repeats key(s): shipment_id")]


CARBON_HEADER = ("activity_event_id,asset_id,geo,origin_measurement_timestamp,scope,category,activity,"
                 "source,raw_data,units")
GASOLINE = "mobile-combustion,Motor Gasoline - Gasoline Passenger Cars,fleet"


def test_carbon_non_finite_input_or_result_is_a_calculation_failure(tmp_path: Path, fault: Case) -> None:
    fault("carbon raw_data NaN / inf / 1e400, or a co2e that overflows; raw_data empty or NA",
          expected="each a TYPE_ERROR calculation failure with its reason; no NaN or inf in gold.emissions")
    s, lake = _lake(tmp_path, "lake")
    key = "carbon/2026/11/nonfinite.csv"
    rows = [f"e1,v1,[1;2],2019-10,1,{GASOLINE},9,gal",
            f"e2,v2,[1;2],2019-10,1,{GASOLINE},NaN,gal",
            f"e3,v3,[1;2],2019-10,1,{GASOLINE},inf,gal",
            f"e4,v4,[1;2],2019-10,1,{GASOLINE},1e400,gal",
            f"e5,v5,[1;2],2019-10,1,{GASOLINE},1.7e308,gal",
            f"e6,v6,[1;2],2019-10,1,{GASOLINE},-Infinity,gal",
            f"e7,v7,[1;2],2019-10,1,{GASOLINE},,gal",
            f"e8,v8,[1;2],2019-10,1,{GASOLINE},NA,gal"]
    land(lake, key, (CARBON_HEADER + "\n" + "\n".join(rows) + "\n").encode())
    summary = run(s)
    [report] = [b for b in summary["batch_runs"] if b.get("pipeline") == "carbon"]
    rejected = query(lake, "SELECT line_no, reason_code, message FROM quarantine.rejects "
                           "WHERE pipeline = 'carbon' ORDER BY line_no")
    fault.saw(f"calculated {report.get('calculated')}, failed {report.get('failed')}: "
              f"{[(r[0], r[1]) for r in rejected]}")
    assert (report["status"], report["records"], report["calculated"], report["failed"]) == ("SUCCEEDED", 8, 1, 7)
    assert rejected == [
        (3, "TYPE_ERROR", 'raw_data "NaN" is not a finite number'),
        (4, "TYPE_ERROR", 'raw_data "inf" is not a finite number'),
        (5, "TYPE_ERROR", 'raw_data "1e400" is not a finite number'),
        (6, "TYPE_ERROR", 'raw_data "1.7e308" gives an emission that is not a finite number'),
        (7, "TYPE_ERROR", 'raw_data "-Infinity" is not a finite number'),
        (8, "TYPE_ERROR", "raw_data is missing"),  # its message was once NULL
        (9, "TYPE_ERROR", 'raw_data "NA" is not a number'),  # once read as a missing value
    ]
    assert query(lake, "SELECT activity_event_id, isfinite(raw_data), "
                       "isfinite(emissions_output.calculated_emissions.co2e.ar4.amount) FROM gold.emissions") == [
        ("e1", True, True)]


READINGS = """
format = "csv"
[tables.readings]
fields = [
  { name = "sensor", required = true },
  { name = "value", type = "float64" },
]
"""


@PATHS
def test_non_finite_numbers_in_a_declared_csv_pipeline_are_type_errors(
    tmp_path: Path, fault: Case, fast: bool
) -> None:
    fault(f"non-finite float64 in a declared CSV pipeline ({'fast' if fast else 'exact'} path)",
          expected="NaN, inf, -Infinity, 1e400 each a TYPE_ERROR naming the line; the finite rows load")
    s, lake = _lake(tmp_path, "lake", transform__fast_path=fast)
    (s.home / "pipelines").mkdir(exist_ok=True)
    (s.home / "pipelines" / "readings.toml").write_text(READINGS)
    lake = Lake.open(s)
    key = "readings/r.csv"
    land(lake, key, b"sensor,value\na,1.5\nb,NaN\nc,inf\nd,-Infinity\ne,1e400\nf,-2e3\n")
    summary = run(s)
    rejected = query(lake, "SELECT line_no, reason_code, message FROM quarantine.rejects ORDER BY line_no")
    fault.saw(f"loaded {summary['loaded']}, rejected {summary['rejected']}: {[(r[0], r[1]) for r in rejected]}")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 4, 0)
    assert query(lake, "SELECT _source.line_no, sensor, value FROM silver.readings ORDER BY 1") == [
        (2, "a", 1.5), (7, "f", -2000.0)]
    assert rejected == [(3, "TYPE_ERROR", "value: NaN is not a finite float64"),
                        (4, "TYPE_ERROR", "value: inf is not a finite float64"),
                        (5, "TYPE_ERROR", "value: -Infinity is not a finite float64"),
                        (6, "TYPE_ERROR", "value: 1e400 is not a finite float64")]


@PATHS
def test_a_repeated_key_no_table_reads_is_ignored_like_the_key(tmp_path: Path, fault: Case, fast: bool) -> None:
    fault(f"repeated undeclared key, on_unknown_field = ignore ({'fast' if fast else 'exact'} path)",
          expected="the record loads on both paths alike (the ignored key's values are never loaded)")
    s, lake = _lake(tmp_path, "lake", transform__fast_path=fast)
    land(lake, "shipments/2026-01-05/junk.jsonl",
         f'{{{SHP},"shipment_id":"x","weight_kg":2,"junk":1,"junk":2}}\n{GOOD}\n'.encode())
    summary = run(s)
    fault.saw(f"loaded {summary['loaded']}, rejected {summary['rejected']}")
    assert (summary["loaded"], summary["rejected"], summary["failures"]) == (2, 0, 0)
    assert _shipment_ids(lake) == [(1, "x", 2.0), (2, "good-1", 1.5)]
