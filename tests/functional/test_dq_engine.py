"""The DQ engine on real DuckDB tables and files: every rule kind passing and failing with exact
counts, ``mostly`` on both sides of its threshold, the profile, files with a BOM, the HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeline.dq.engine import DqResult, evaluate, evaluate_path
from lakeline.dq.report import render_html
from lakeline.dq.rules import parse_ruleset
from lakeline.errors import DataError, NotFoundError, UsageError
from lakeline.pipelines.carbon.factors import packaged_path
from lakeline.pipelines.carbon.rules import RULES as CARBON_RULES

ROWS = """(VALUES
  ('a1', 1,    'x1', TIMESTAMP '2026-01-01 00:00:00', 2.0),
  ('a2', 50,   'x2', TIMESTAMP '2026-01-02 00:00:00', 4.0),
  ('a3', 100,  'x3', NULL,                           6.0),
  ('a3', NULL, 'zz', TIMESTAMP '2026-01-03 06:00:00', 8.0),
  (NULL, 250,  NULL, NULL,                           NULL)
) v(id, n, code, ts, x)"""


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone='UTC'")
    c.execute(f"CREATE TABLE t AS SELECT * FROM {ROWS}")
    return c


def one(con: duckdb.DuckDBPyConnection, rule: dict[str, Any], relation: str = "t") -> dict[str, Any]:
    result = evaluate(con, relation, parse_ruleset("r", [rule], origin="test"), source="t", run_id="r1")
    assert result.statistics["evaluated"] == 1
    [res] = result.results
    assert result.success is res["success"]
    return res


def counts(res: dict[str, Any]) -> tuple[bool, int, float, list[Any]]:
    r = res["result"]
    return res["success"], r["unexpected_count"], r["unexpected_percent"], r["partial_unexpected_list"]


# ---- one passing and one failing dataset per rule kind ---------------------------------
def test_not_null(con: duckdb.DuckDBPyConnection) -> None:
    assert counts(one(con, {"kind": "not_null", "column": "x"}, "(SELECT * FROM t WHERE id IS NOT NULL)")) == (
        True, 0, 0.0, [])
    res = one(con, {"kind": "not_null", "column": "ts"})
    assert counts(res) == (False, 2, 40.0, [None, None])
    assert res["result"]["element_count"] == 5
    assert res["kwargs"] == {"column": "ts", "mostly": 1.0}
    assert res["expectation_type"] == "expect_column_values_to_not_be_null"


def test_unique_counts_extra_copies_and_ignores_nulls(con: duckdb.DuckDBPyConnection) -> None:
    assert counts(one(con, {"kind": "unique", "column": "code"})) == (True, 0, 0.0, [])
    res = one(con, {"kind": "unique", "column": "id"})
    assert counts(res) == (False, 1, 25.0, ["a3"])  # 1 extra copy of 4 non-null values
    assert (res["result"]["missing_count"], res["result"]["unexpected_percent_total"]) == (1, 20.0)


def test_between(con: duckdb.DuckDBPyConnection) -> None:
    assert counts(one(con, {"kind": "between", "column": "n", "min": 1, "max": 250})) == (True, 0, 0.0, [])
    assert counts(one(con, {"kind": "between", "column": "n", "min": 1, "max": 100})) == (False, 1, 25.0, [250])
    strict = one(con, {"kind": "between", "column": "n", "min": 1, "max": 100, "strict_min": True})
    assert counts(strict) == (False, 2, 50.0, [1, 250])
    assert strict["kwargs"] == {"column": "n", "min_value": 1, "max_value": 100, "strict_min": True,
                                "strict_max": False, "mostly": 1.0}
    assert counts(one(con, {"kind": "between", "column": "x", "min": 3})) == (False, 1, 25.0, [2.0])


def test_between_on_text_counts_non_numbers_as_unexpected(con: duckdb.DuckDBPyConnection) -> None:
    rel = "(SELECT * FROM (VALUES ('9'), ('10'), ('heavy'), (NULL)) v(w))"
    assert counts(one(con, {"kind": "between", "column": "w", "min": 0, "max": 9}, rel)) == (
        False, 2, 66.666667, ["10", "heavy"])


def test_between_timestamps_with_string_bounds(con: duckdb.DuckDBPyConnection) -> None:
    rule = {"kind": "between", "column": "ts", "min": "2026-01-01", "max": "2026-01-02 12:00:00"}
    assert counts(one(con, rule)) == (False, 1, 33.333333, ["2026-01-03T06:00:00"])


def test_in_set(con: duckdb.DuckDBPyConnection) -> None:
    assert counts(one(con, {"kind": "in_set", "column": "id", "values": ["a1", "a2", "a3"]})) == (True, 0, 0.0, [])
    assert counts(one(con, {"kind": "in_set", "column": "code", "values": ["x1", "x2", "x3"]})) == (
        False, 1, 25.0, ["zz"])
    assert counts(one(con, {"kind": "in_set", "column": "n", "values": [1, 50, 100]})) == (False, 1, 25.0, [250])
    # a numeric set on a text column compares text
    rel = "(SELECT * FROM (VALUES ('1'), ('2'), ('4')) v(scope))"
    assert counts(one(con, {"kind": "in_set", "column": "scope", "values": [1, 2, 3]}, rel)) == (
        False, 1, 33.333333, ["4"])


def test_regex_is_a_search_like_ge(con: duckdb.DuckDBPyConnection) -> None:
    assert counts(one(con, {"kind": "regex", "column": "id", "pattern": "[0-9]"})) == (True, 0, 0.0, [])
    assert counts(one(con, {"kind": "regex", "column": "code", "pattern": "^x[0-9]$"})) == (False, 1, 25.0, ["zz"])
    assert counts(one(con, {"kind": "regex", "column": "n", "pattern": "^[0-9]{1,2}$"})) == (
        False, 2, 50.0, [100, 250])


def test_row_count(con: duckdb.DuckDBPyConnection) -> None:
    ok = one(con, {"kind": "row_count", "min": 5, "max": 5})
    assert (ok["success"], ok["result"], ok["kwargs"]) == (True, {"observed_value": 5},
                                                           {"min_value": 5, "max_value": 5})
    assert one(con, {"kind": "row_count", "max": 4})["success"] is False
    empty = one(con, {"kind": "row_count", "min": 1}, "(SELECT * FROM t WHERE false)")
    assert (empty["success"], empty["result"]["observed_value"]) == (False, 0)


def test_columns(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, {"kind": "columns", "columns": ["id", "n"]})["success"] is True
    exact = one(con, {"kind": "columns", "columns": ["id", "n"], "exact": True})
    assert (exact["success"], exact["result"]["details"]) == (False, {"mismatched": {
        "missing": [], "unexpected": ["code", "ts", "x"]}})
    missing = one(con, {"kind": "columns", "columns": ["id", "geo"]})
    assert (missing["success"], missing["result"]["details"]["mismatched"]["missing"]) == (False, ["geo"])


def test_column_types(con: duckdb.DuckDBPyConnection) -> None:
    ok = one(con, {"kind": "column_types", "types": {"id": "string", "n": "int32", "ts": "timestamp", "x": "decimal(2,1)"}})
    assert ok["success"] is True
    assert ok["result"]["observed_value"] == {"id": "VARCHAR", "n": "INTEGER", "ts": "TIMESTAMP", "x": "DECIMAL(2,1)"}
    bad = one(con, {"kind": "column_types", "column": "n", "type": "BIGINT"})
    assert (bad["success"], bad["result"]["details"]["mismatched"]) == (
        False, {"n": {"expected": "BIGINT", "observed": "INTEGER"}})
    absent = one(con, {"kind": "column_types", "types": {"geo": "VARCHAR"}})
    assert absent["result"]["details"]["mismatched"] == {"geo": {"expected": "VARCHAR", "observed": None}}


def test_freshness(con: duckdb.DuckDBPyConnection) -> None:
    fresh = one(con, {"kind": "freshness", "column": "ts", "max_age": "1d", "now": "2026-01-04T00:00:00Z"})
    assert (fresh["success"], fresh["result"]["observed_value"], fresh["result"]["age_seconds"]) == (
        True, "2026-01-03T06:00:00+00:00", 64800.0)
    stale = one(con, {"kind": "freshness", "column": "ts", "max_age": "12h", "now": "2026-01-04T00:00:00Z"})
    assert (stale["success"], stale["result"]["max_age_seconds"], stale["result"]["missing_count"]) == (
        False, 43200.0, 2)
    # against the wall clock, 2026-01 data is not 1 minute old; a column without timestamps never is fresh
    assert one(con, {"kind": "freshness", "column": "ts", "max_age": 60})["success"] is False
    assert one(con, {"kind": "freshness", "column": "code", "max_age": "1w"})["success"] is False


def test_custom_sql_row_condition(con: duckdb.DuckDBPyConnection) -> None:
    assert counts(one(con, {"kind": "sql", "sql": "x = 2 * length(id) * 0 + x"},
                       "(SELECT * FROM t WHERE x IS NOT NULL)")) == (True, 0, 0.0, [])
    res = one(con, {"kind": "sql", "sql": "n < 200 AND x > 3", "name": "small n, big x"})
    ok, unexpected, pct, examples = counts(res)
    assert (ok, unexpected, pct, res["rule"]) == (False, 3, 60.0, "small n, big x")
    assert examples == [  # whole rows, in table order (NULL conditions fail)
        {"id": "a1", "n": 1, "code": "x1", "ts": "2026-01-01T00:00:00", "x": 2.0},
        {"id": "a3", "n": None, "code": "zz", "ts": "2026-01-03T06:00:00", "x": 8.0},
        {"id": None, "n": 250, "code": None, "ts": None, "x": None}]


def test_bad_custom_sql_is_a_data_error_naming_the_rule(con: duckdb.DuckDBPyConnection) -> None:
    rs = parse_ruleset("r", [{"kind": "sql", "sql": "nope > 1", "name": "my check"}], origin="test")
    with pytest.raises(DataError, match=r"data quality query on t failed \(custom sql rules: my check\)"):
        evaluate(con, "t", rs, source="t")


# ---- mostly ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("rule", "mostly", "success"), [
    ({"kind": "not_null", "column": "ts"}, 0.6, True),   # 3 of 5 rows = 0.6
    ({"kind": "not_null", "column": "ts"}, 0.61, False),
    ({"kind": "between", "column": "n", "min": 1, "max": 100}, 0.75, True),  # 3 of 4 non-null
    ({"kind": "between", "column": "n", "min": 1, "max": 100}, 0.76, False),
    ({"kind": "unique", "column": "id"}, 0.75, True),
    ({"kind": "unique", "column": "id"}, 0.8, False),
])
def test_mostly_on_both_sides(con: duckdb.DuckDBPyConnection, rule: dict[str, Any], mostly: float,
                              success: bool) -> None:
    res = one(con, {**rule, "mostly": mostly})
    assert (res["success"], res["kwargs"]["mostly"]) == (success, mostly)


def test_missing_column_fails_the_rule_without_raising(con: duckdb.DuckDBPyConnection) -> None:
    rs = parse_ruleset("r", [{"kind": "not_null", "column": "asset_id"}, {"kind": "not_null", "column": "id",
                                                                          "mostly": 0.8}], origin="test")
    result = evaluate(con, "t", rs, source="t")
    assert [r["success"] for r in result.results] == [False, True]
    assert result.results[0]["exception_info"]["exception_message"] == (
        "column 'asset_id' does not exist; columns are id, n, code, ts, x")
    assert result.statistics == {"evaluated": 2, "successful": 1, "unsuccessful": 1, "success_percent": 50.0,
                                 "rows": 5}


def test_one_pass_then_examples_only_for_failures(con: duckdb.DuckDBPyConnection,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    rs = parse_ruleset("r", [{"kind": "not_null", "column": "id"}, {"kind": "unique", "column": "code"},
                             {"kind": "between", "column": "n", "min": 0, "max": 10},
                             {"kind": "in_set", "column": "code", "values": ["x1"]}], origin="test")

    class Spy:
        def __init__(self, inner: duckdb.DuckDBPyConnection) -> None:
            self.inner = inner

        def execute(self, sql: str, params: Any = None) -> Any:
            seen.append(sql)
            return self.inner.execute(sql, params)

    result = evaluate(Spy(con), "t", rs, source="t")  # type: ignore[arg-type]
    assert [r["success"] for r in result.results] == [False, True, False, False]
    scans = [s for s in seen if not s.startswith("DESCRIBE")]
    assert len(scans) == 4  # the aggregate pass + 3 example queries (the passing rule has none)
    assert scans[0].count("FROM t") == 1 and "LIMIT" not in scans[0]
    assert all("LIMIT 20" in s for s in scans[1:])


def test_at_most_20_examples() -> None:
    c = duckdb.connect()
    c.execute("CREATE TABLE big AS SELECT i AS n FROM range(1000) r(i)")
    res = one(c, {"kind": "between", "column": "n", "max": 10}, "big")
    assert (res["result"]["unexpected_count"], res["result"]["partial_unexpected_list"]) == (989, list(range(11, 31)))


def test_relation_must_be_a_name_or_a_select(con: duckdb.DuckDBPyConnection) -> None:
    rs = CARBON_RULES
    with pytest.raises(UsageError, match="neither a table name"):
        evaluate(con, "t; DROP TABLE t", rs, source="x")
    with pytest.raises(NotFoundError, match="no table missing.tbl"):
        evaluate(con, "missing.tbl", rs, source="x")


# ---- profile --------------------------------------------------------------------------------
def test_profile_exact_figures(con: duckdb.DuckDBPyConnection) -> None:
    rs = parse_ruleset("r", [{"kind": "row_count", "min": 1}], origin="test")
    prof = evaluate(con, "t", rs, source="t", profile=True).profile
    assert prof == {
        "id": {"type": "VARCHAR", "count": 4, "missing": 1, "distinct": 3, "duplicates": 1, "min": "a1", "max": "a3",
               "top_values": [{"value": "a3", "count": 2}, {"value": "a1", "count": 1}, {"value": "a2", "count": 1}]},
        "n": {"type": "INTEGER", "count": 4, "missing": 1, "distinct": 4, "duplicates": 0, "min": 1, "max": 250,
              "mean": 100.25},
        "code": {"type": "VARCHAR", "count": 4, "missing": 1, "distinct": 4, "duplicates": 0, "min": "x1",
                 "max": "zz", "top_values": [{"value": "x1", "count": 1}, {"value": "x2", "count": 1},
                                             {"value": "x3", "count": 1}, {"value": "zz", "count": 1}]},
        "ts": {"type": "TIMESTAMP", "count": 3, "missing": 2, "distinct": 3, "duplicates": 0,
               "min": "2026-01-01T00:00:00", "max": "2026-01-03T06:00:00"},
        "x": {"type": "DECIMAL(2,1)", "count": 4, "missing": 1, "distinct": 4, "duplicates": 0, "min": 2, "max": 8,
              "mean": 5.0},
    }


def test_profile_top_values_capped_at_10() -> None:
    c = duckdb.connect()
    c.execute("CREATE TABLE s AS SELECT 'v' || (i % 15)::VARCHAR AS k FROM range(100) r(i)")
    prof = evaluate(c, "s", CARBON_RULES, source="s", profile=True).profile
    assert prof is not None
    top = prof["k"]["top_values"]
    assert len(top) == 10
    assert top[:2] == [{"value": "v0", "count": 7}, {"value": "v1", "count": 7}]
    assert sum(t["count"] for t in top) == 70


def test_profile_top_values_of_an_all_distinct_column_are_its_smallest_values() -> None:
    # an id column takes a top-N instead of a grouping of one-row groups: the same answer
    c = duckdb.connect()
    c.execute("CREATE TABLE s AS SELECT 'id-' || ((i * 37) % 101)::VARCHAR AS k, i % 3 AS g "
              "FROM range(101) r(i)")
    prof = evaluate(c, "s", CARBON_RULES, source="s", profile=True).profile
    assert prof is not None and prof["k"]["duplicates"] == 0
    grouped = c.execute("SELECT k, count(*) FROM s GROUP BY k ORDER BY 2 DESC, 1 LIMIT 10").fetchall()
    assert prof["k"]["top_values"] == [{"value": k, "count": n} for k, n in grouped]
    assert prof["k"]["top_values"][:3] == [{"value": "id-0", "count": 1}, {"value": "id-1", "count": 1},
                                           {"value": "id-10", "count": 1}]


# ---- files ----------------------------------------------------------------------------------
CARBON_HEADER = "activity_event_id,asset_id,geo,origin_measurement_timestamp,scope,category,activity,source,raw_data,units"


def _carbon_csv(path: Path, rows: list[str]) -> Path:
    path.write_bytes(b"\xef\xbb\xbf" + (CARBON_HEADER + "\n" + "\n".join(rows) + "\n").encode())
    return path


def _row(event: str, asset: str = "vehicle101", raw: str = "9") -> str:
    return (f'{event},{asset},"[22.4937132,91.5015009]",2019-10,1,mobile-combustion,'
            f"Motor Gasoline - Gasoline Passenger Cars,company_fleet_management_database,{raw},gal")


def test_carbon_ruleset_on_a_csv_with_bom_and_quoted_commas(tmp_path: Path) -> None:
    good = _carbon_csv(tmp_path / "good.csv", [_row(f"carbon-data-lake-{i}") for i in range(5)])
    result = evaluate_path(str(good), CARBON_RULES, profile=True, run_id="run1")
    assert (result.success, result.ruleset, result.run_id, result.statistics["rows"]) == (True, "carbon", "run1", 5)
    assert result.profile is not None
    assert list(result.profile)[:3] == ["activity_event_id", "asset_id", "geo"]  # the BOM is not in the name
    assert result.profile["geo"]["top_values"] == [{"value": "[22.4937132,91.5015009]", "count": 5}]
    assert (result.profile["raw_data"]["mean"], result.profile["scope"]["type"]) == (9.0, "BIGINT")
    bad = _carbon_csv(tmp_path / "bad.csv", [_row("e1"), _row("e1"), _row("e2", asset=""), _row(""), _row("e3")])
    failed = evaluate_path(str(bad), CARBON_RULES)
    assert failed.success is False
    assert [(r["kwargs"]["column"], r["result"]["unexpected_count"], r["result"]["partial_unexpected_list"])
            for r in failed.results] == [("activity_event_id", 1, [None]), ("activity_event_id", 1, ["e1"]),
                                         ("asset_id", 1, [None])]


def test_the_shipped_factor_table_reads(tmp_path: Path) -> None:
    rs = parse_ruleset("factors", [{"kind": "row_count", "min": 236, "max": 236},
                                   {"kind": "not_null", "column": "lookup name"},
                                   {"kind": "in_set", "column": "scope", "values": [1, 2, 3]}], origin="test")
    result = evaluate_path(str(packaged_path()), rs, profile=True)
    assert result.success, result.results


def test_json_lines_parquet_and_directories(tmp_path: Path) -> None:
    rs = parse_ruleset("r", [{"kind": "not_null", "column": "a"}, {"kind": "between", "column": "b", "max": 2}],
                       origin="test")
    (tmp_path / "d.jsonl").write_text('{"a": 1, "b": 1}\n{"a": null, "b": 3}\n')
    assert [r["result"]["unexpected_count"] for r in evaluate_path(str(tmp_path / "d.jsonl"), rs).results] == [1, 1]
    (tmp_path / "arr.json").write_text('[{"a": 1, "b": 1}, {"a": 2, "b": 2}]')
    assert evaluate_path(str(tmp_path / "arr.json"), rs).success is True
    part = tmp_path / "pq" / "dt=2026-01-01"
    part.mkdir(parents=True)
    pq.write_table(pa.table({"a": [1, None, 3], "b": [1, 2, 9]}), part / "p.parquet")
    res = evaluate_path(str(tmp_path / "pq"), rs, profile=True)
    assert [r["result"]["unexpected_count"] for r in res.results] == [1, 1]
    assert res.profile is not None and res.profile["dt"]["count"] == 3  # hive partition column
    with pytest.raises(UsageError, match="unknown format .xlsx"):
        evaluate_path(str(_touch(tmp_path / "x.xlsx")), rs)
    with pytest.raises(NotFoundError, match="no such file"):
        evaluate_path(str(tmp_path / "nope.csv"), rs)
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="broken.parquet: cannot read as parquet"):
        evaluate_path(str(tmp_path / "broken.parquet"), rs)


def _touch(p: Path) -> Path:
    p.write_text("x")
    return p


# ---- result JSON and HTML -------------------------------------------------------------------
def test_result_json_shape(con: duckdb.DuckDBPyConnection) -> None:
    result = evaluate(con, "t", CARBON_RULES, source="s3://b/k.csv", run_id="r9")
    d = json.loads(json.dumps(result.to_dict()))
    assert list(d) == ["success", "ruleset", "source", "run_id", "generated_at", "statistics", "results", "profile"]
    assert (d["source"], d["run_id"], d["profile"]) == ("s3://b/k.csv", "r9", None)
    assert d["generated_at"].endswith("Z")
    assert isinstance(result, DqResult)


def test_html_report_shows_the_failing_rule_and_escapes_values() -> None:
    c = duckdb.connect()
    c.execute("CREATE TABLE h AS SELECT * FROM (VALUES ('<script>alert(1)</script>', 1), ('ok', 2)) v(name, n)")
    rs = parse_ruleset("xss & co", [{"kind": "regex", "column": "name", "pattern": "^[a-z]+$", "name": "<b>names</b>"},
                                    {"kind": "between", "column": "n", "min": 1, "max": 2}], origin="test")
    result = evaluate(c, "h", rs, source="<src>", profile=True)
    page = render_html(result.to_dict())
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page and "src=" not in page and "http" not in page  # no script, no external assets
    # shown as text three times: the failing example, the profile's min and its top value
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3
    assert "&lt;b&gt;names&lt;/b&gt;" in page and "expect_column_values_to_match_regex" in page
    assert "FAILED" in page and "1 of 2 rules passed" in page and "xss &amp; co" in page
    assert 'class="failed"' in page and 'class="passed"' in page


def test_grouped_evaluation_equals_one_evaluation_per_group(con: duckdb.DuckDBPyConnection) -> None:
    """evaluate_groups gives each group exactly what evaluate gives it alone: counts, examples
    of failures, success; a group with no rows is evaluated as an empty relation."""
    from lakeline.dq.engine import evaluate_groups

    con.execute("CREATE TABLE g AS SELECT *, CASE WHEN id IN ('a1', 'a2') THEN 'p' ELSE 'q' END AS grp FROM t")
    rules = [{"kind": "not_null", "column": "id"}, {"kind": "unique", "column": "id"},
             {"kind": "between", "column": "n", "min": 0, "max": 100},
             {"kind": "in_set", "column": "code", "values": ["x1", "x2", "x3"]},
             {"kind": "row_count", "min": 1}, {"kind": "sql", "sql": "x < 7"}]
    rs = parse_ruleset("r", rules, origin="test")
    grouped = evaluate_groups(con, "g", rs, column="grp", groups=["p", "q", "empty"],
                              sources={"p": "P", "q": "Q", "empty": "E"}, run_id="r1")
    assert list(grouped) == ["p", "q", "empty"]
    for g, source in (("p", "P"), ("q", "Q"), ("empty", "E")):
        alone = evaluate(con, f"(SELECT * FROM g WHERE grp = '{g}')", rs, source=source, run_id="r1")
        got = grouped[g]
        assert (got.success, got.source, got.statistics, got.results) == (
            alone.success, alone.source, alone.statistics, alone.results)
    assert grouped["p"].success is True and grouped["p"].statistics["rows"] == 2
    q = {r["expectation_type"]: r for r in grouped["q"].results}
    assert grouped["q"].statistics["rows"] == 3
    unique = q["expect_column_values_to_be_unique"]["result"]
    assert (unique["unexpected_count"], unique["partial_unexpected_list"]) == (1, ["a3"])
    assert q["expect_column_values_to_be_between"]["result"]["partial_unexpected_list"] == [250]
    assert grouped["empty"].statistics["rows"] == 0
