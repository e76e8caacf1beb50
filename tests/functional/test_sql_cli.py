"""`lakeline sql | explain | tables` in-process through lakeline.cli.main.main (exit codes and
all): --csv / --json written by DuckDB (nested columns, decimals, timestamps), --limit in the
query, the table list (promoted runs in, scratch out) and the sql.dialect setting."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeline.cli.main import main
from lakeline.lake import Lake
from lakeline.sql import connect
from tests.functional.helpers import land, rec, run, settings

SHIPMENTS = [
    rec(shipment_id="shp_000000000001", event_time="2026-01-05T10:00:00Z", weight_kg=1.5),
    rec(shipment_id="shp_000000000002", event_time="2026-01-05T11:30:00.25Z", carrier="DHL", weight_kg=2.0),
    rec(shipment_id="shp_000000000003", event_time="2026-01-06T09:00:00Z", weight_kg=3.25),
]
KEY = "shipments/2026-01-05/a.jsonl"


def cli(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    """Run ``lakeline --home HOME ARGS`` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["--home", str(home), *args])
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


@pytest.fixture
def lake(home: Path) -> Lake:
    lake = Lake.open(settings(home))
    land(lake, KEY, b"".join(orjson.dumps(r) + b"\n" for r in SHIPMENTS))
    assert run(lake.settings)["loaded"] == 3
    return lake


# ---- --csv / --json: DuckDB writes them, nested columns included -------------------------------
def test_csv_of_a_table_with_a_struct_column(capsys, home, lake):
    # pyarrow's CSV writer refused `_source` (a struct): "select *" crashed before
    code, out, err = cli(capsys, home, "sql", "SELECT * FROM silver.shipments ORDER BY shipment_id", "--csv")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["shipment_id"], r["carrier"], r["weight_kg"], r["event_time"], r["dt"]) for r in rows] == [
        ("shp_000000000001", "UPS", "1.5", "2026-01-05T10:00:00+00:00", "2026-01-05"),
        ("shp_000000000002", "DHL", "2.0", "2026-01-05T11:30:00.250000+00:00", "2026-01-05"),
        ("shp_000000000003", "UPS", "3.25", "2026-01-06T09:00:00+00:00", "2026-01-06")]
    sources = [json.loads(r["_source"]) for r in rows]
    assert [(s["key"], s["line_no"]) for s in sources] == [(KEY, 1), (KEY, 2), (KEY, 3)]


def test_csv_renders_every_kind_of_value(capsys, home, lake):
    q = ("SELECT [1, 2] AS l, MAP {'k': 1.5::DOUBLE} AS m, {'a': TIMESTAMP '2026-01-05 10:00:00.25', "
         "'n': 'nan'::DOUBLE} AS s, 1.50::DECIMAL(5,2) AS d, TIMESTAMPTZ '2026-01-05 12:00:00+02' AS tz, "
         "TIMESTAMP '2026-01-05 10:00:00' AS ts, DATE '2026-01-05' AS day, 'a,\"b' AS t, NULL AS n, "
         "170141183460469231731687303715884105727::HUGEINT AS big")
    code, out, _ = cli(capsys, home, "sql", q, "--csv")
    assert code == 0
    assert out == (
        "l,m,s,d,tz,ts,day,t,n,big\n"
        '"[1,2]","{""k"":1.5}","{""a"":""2026-01-05T10:00:00.250000"",""n"":null}",1.50,'
        '2026-01-05T10:00:00+00:00,2026-01-05T10:00:00,2026-01-05,"a,""b",,'
        "170141183460469231731687303715884105727\n")


def test_json_is_an_array_of_objects_with_nested_values(capsys, home, lake):
    code, out, _ = cli(capsys, home, "sql", "SELECT shipment_id, weight_kg, event_time, dt, _source.line_no AS line, "
                                            "_source FROM silver.shipments ORDER BY shipment_id", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [{k: v for k, v in r.items() if k != "_source"} for r in rows] == [
        {"shipment_id": "shp_000000000001", "weight_kg": 1.5, "event_time": "2026-01-05T10:00:00+00:00",
         "dt": "2026-01-05", "line": 1},
        {"shipment_id": "shp_000000000002", "weight_kg": 2.0, "event_time": "2026-01-05T11:30:00.250000+00:00",
         "dt": "2026-01-05", "line": 2},
        {"shipment_id": "shp_000000000003", "weight_kg": 3.25, "event_time": "2026-01-06T09:00:00+00:00",
         "dt": "2026-01-06", "line": 3}]
    assert [(r["_source"]["key"], r["_source"]["line_no"]) for r in rows] == [(KEY, 1), (KEY, 2), (KEY, 3)]


def test_json_numbers_nan_and_empty_results(capsys, home, lake):
    q = ("SELECT sum(x) AS s, 1.50::DECIMAL(5,2) AS d, 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf, "
         "[1.5::DOUBLE, 'nan'::DOUBLE] AS l FROM range(5) t(x)")
    code, out, _ = cli(capsys, home, "sql", q, "--json")
    assert code == 0
    assert json.loads(out) == [{"s": 10, "d": 1.5, "nan": None, "inf": None, "l": [1.5, None]}]
    code, out, _ = cli(capsys, home, "sql", "SELECT * FROM silver.shipments WHERE false", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = cli(capsys, home, "sql", "SELECT 1 AS a WHERE false", "--csv")
    assert (code, out) == (0, "a\n")


def test_json_and_csv_together_is_a_usage_error(capsys, home, lake):
    code, out, err = cli(capsys, home, "sql", "SELECT 1", "--json", "--csv")
    assert code == 2
    assert "--json and --csv exclude each other" in err


# ---- --limit goes into the query ------------------------------------------------------------------
ENDLESS = "SELECT i FROM range(1000000000000) t(i)"  # a million million rows: never fetched whole


def test_table_mode_shows_the_default_limit_and_says_more_exist(capsys, home, lake):
    started = time.monotonic()
    code, out, err = cli(capsys, home, "sql", ENDLESS)
    assert code == 0
    assert time.monotonic() - started < 30
    assert "│ 999 │" in out and "│ 1000 │" not in out
    assert err == "(1000 rows shown, more exist; use --limit)\n"

    code, out, err = cli(capsys, home, "sql", ENDLESS, "--limit", "2")
    assert (code, err) == (0, "(2 rows shown, more exist; use --limit)\n")
    assert "│ 1 │" in out and "│ 2 │" not in out
    code, out, err = cli(capsys, home, "sql", "SELECT shipment_id FROM silver.shipments", "--limit", "3")
    assert (code, err) == (0, "")  # exactly 3 rows: nothing more
    assert out.count("shp_") == 3


def test_json_and_csv_have_no_limit_unless_given(capsys, home, lake):
    code, out, err = cli(capsys, home, "sql", "SELECT i FROM range(1500) t(i)", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"i": i} for i in range(1500)]
    code, out, err = cli(capsys, home, "sql", ENDLESS, "--csv", "--limit", "3")
    assert (code, out, err) == (0, "i\n0\n1\n2\n", "(3 rows shown, more exist; use --limit)\n")
    code, out, err = cli(capsys, home, "sql", "SELECT shipment_id AS s FROM silver.shipments ORDER BY s DESC",
                         "--json", "--limit", "2")
    assert (code, json.loads(out), err) == (0, [{"s": "shp_000000000003"}, {"s": "shp_000000000002"}],
                                            "(2 rows shown, more exist; use --limit)\n")


# ---- tables: every queryable table, no scratch -----------------------------------------------------
TRANSACTIONS = ("TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp\n"
                "TXN-1,C1,10.50,USD,2024-01-05T10:00:00Z\n"
                "TXN-2,C2,3.00,EUR,2024-02-05T10:00:00Z\n"
                "TXN-3,C1,1.25,EUR,2024-02-06T10:00:00Z\n")


def test_tables_lists_promoted_transactions_and_hides_scratch(capsys, home, lake, tmp_path):
    (tmp_path / "t.csv").write_text(TRANSACTIONS)
    assert cli(capsys, home, "put", str(tmp_path / "t.csv"), "--pipeline", "transactions")[0] == 0
    assert cli(capsys, home, "run")[0] == 0
    code, out, err = cli(capsys, home, "tables", "--json")
    names = [t["name"] for t in json.loads(out)]
    assert names == ["silver.shipments", "silver.transactions__runs"]  # not promoted yet
    assert cli(capsys, home, "promote")[0] == 0
    # the carbon workflow stages its batches here while it runs: scratch, not a table
    batch = pa.table({"activity_event_id": ["a"], "_line_no": [2]})
    pq.write_table(batch, _path(home, "silver", "transformed/root1/part_0.parquet"))
    pq.write_table(batch, _path(home, "gold", "_quality/x/part.parquet"))

    code, out, err = cli(capsys, home, "tables", "--json")
    assert code == 0
    found = {t["name"]: t for t in json.loads(out)}
    assert list(found) == ["silver.shipments", "silver.transactions", "silver.transactions__runs"]
    # one promoted file per month partition (2024-01, 2024-02), as many as the run wrote
    assert found["silver.transactions"]["files"] == found["silver.transactions__runs"]["files"] == 2
    assert found["silver.transactions"]["location"] == str(home / "zones" / "silver" / "mortgages" / "transactions")
    code, out, _ = cli(capsys, home, "sql", "SELECT count(*) AS n, sum(TransactionAmount) AS s "
                                            "FROM silver.transactions", "--json")
    assert (code, json.loads(out)) == (0, [{"n": 3, "s": 14.75}])
    code, out, err = cli(capsys, home, "sql", "SELECT * FROM silver.transformed")
    assert code == 2 and "Catalog Error" in err
    # a connection made without the pipelines' specs (totesys `load`) gets no view over the run
    # folders of the promoted table (one glob would mix run_id= and current/ files)
    con = connect(lake)
    try:
        assert [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                          "WHERE table_schema = 'silver' ORDER BY 1").fetchall()] == ["shipments"]
    finally:
        con.close()


def _path(home: Path, zone: str, key: str) -> Path:
    path = home / "zones" / zone / key
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# ---- the sql.dialect setting --------------------------------------------------------------------
ATHENA_ONLY = "SELECT approx_distinct(shipment_id) AS n FROM silver.shipments"


def test_dialect_from_the_flag_the_file_and_the_environment(capsys, home, lake, monkeypatch):
    code, out, err = cli(capsys, home, "sql", ATHENA_ONLY, "--json")
    assert code == 2 and "approx_distinct" in err  # DuckDB has no approx_distinct
    assert json.loads(cli(capsys, home, "sql", ATHENA_ONLY, "--json", "--dialect", "athena")[1]) == [{"n": 3}]

    config = home / "lakeline.toml"
    assert 'dialect = "duckdb"' in config.read_text()  # `lakeline init` writes the default
    config.write_text('[sql]\ndialect = "athena"\n')
    assert json.loads(cli(capsys, home, "sql", ATHENA_ONLY, "--json")[1]) == [{"n": 3}]
    assert cli(capsys, home, "sql", ATHENA_ONLY, "--dialect", "duckdb")[0] == 2
    monkeypatch.setenv("LAKELINE__SQL__DIALECT", "duckdb")
    assert cli(capsys, home, "sql", ATHENA_ONLY)[0] == 2

    monkeypatch.setenv("LAKELINE__SQL__DIALECT", "presto")
    code, out, err = cli(capsys, home, "sql", "SELECT 1")
    assert code == 2
    assert err == ("error: sql.dialect must be 'duckdb' or 'athena', got 'presto' "
                   "(lakeline.toml [sql] dialect or LAKELINE__SQL__DIALECT)\n")
    monkeypatch.delenv("LAKELINE__SQL__DIALECT")
    code, out, err = cli(capsys, home, "sql", "SELECT 1", "--dialect", "presto")
    assert code == 2 and "'presto' is not one of 'duckdb', 'athena'" in err


def test_untranslatable_athena_sql_names_the_construct(capsys, home, lake):
    code, out, err = cli(capsys, home, "sql", "SELECT format_datetime(event_time, 'yyyy') FROM silver.shipments",
                         "--dialect", "athena")
    assert (code, out, err) == (2, "", "error: Athena SQL: `FORMAT_DATETIME(...)` has no DuckDB translation\n")
    code, out, err = cli(capsys, home, "sql", "SELECT shipment_id\nFROM silver.shipments\nWHERE (weight_kg > 1",
                         "--dialect", "athena")
    assert code == 2
    assert err.startswith("error: Athena SQL: line 3, column ")
    assert "Expecting )" in err
    code, out, err = cli(capsys, home, "explain", "SELECT nope_fn(1)", "--dialect", "athena")
    assert (code, err) == (2, "error: Athena SQL: `NOPE_FN(...)` has no DuckDB translation\n")
    code, out, err = cli(capsys, home, "sql", "SELECT 1; SELECT 2", "--dialect", "athena")
    assert (code, err) == (2, "error: Athena SQL: give one statement, got 2\n")
    code, out, err = cli(capsys, home, "sql", "SELECT x FROM", "--dialect", "athena")
    assert (code, err) == (2, "error: Athena SQL: line 1, column 13: Expected table name but got the end of "
                              "the query near `FROM`\n")
    code, out, err = cli(capsys, home, "sql", "SHOW TABLES", "--dialect", "athena")  # and no sqlglot warning
    assert (code, err) == (2, "error: Athena SQL: `SHOW` statements have no DuckDB translation\n")


def test_explain_statement_in_sql_shows_the_scan_plan(capsys, home, lake):
    q = "SELECT count(*) FROM silver.shipments WHERE dt = DATE '2026-01-05'"
    code, out, _ = cli(capsys, home, "sql", "EXPLAIN " + q, "--json")
    assert code == 0
    plan = json.loads(out)
    code, out2, _ = cli(capsys, home, "explain", q, "--json")
    assert json.loads(out2)["plans"] == plan["plans"]
    [p] = plan["plans"]
    assert (p["table"], p["planned_files"], p["total_files"]) == ("silver.shipments", 2, 2)
    assert "READ_PARQUET" in plan["duckdb_plan"].upper() or "SCAN" in plan["duckdb_plan"].upper()
    code, out, err = cli(capsys, home, "sql", "EXPLAIN " + q, "--csv")
    assert code == 2 and "EXPLAIN prints a plan" in err
