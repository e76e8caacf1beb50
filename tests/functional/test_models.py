"""SQL models on a local lake: HOME/models/NAME.sql materialised as gold.NAME.

Up-to-date models are returned too, as SKIPPED with the reason "up to date" (never left out),
so a call always reports every model it considered."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path

import orjson
import pytest

from lakeline.adapters.local.lineage import SqliteLedger
from lakeline.errors import ConfigError, UsageError
from lakeline.lake import Lake
from lakeline.lineage.hooks import node_id
from lakeline.models import discover, model_status, parse_model, plan, run_models
from lakeline.models.spec import ALLOWED
from lakeline.pipelines.registry import registry
from lakeline.ports.lineage_model import derived_id
from tests.functional.helpers import land, query, rec, run, settings

D5, D6 = dt.date(2026, 1, 5), dt.date(2026, 1, 6)


def ship(i: int, carrier: str, day: int) -> dict:
    return rec(shipment_id=f"shp_{i:012d}", carrier=carrier, event_time=f"2026-01-0{day}T10:00:00Z")


def event(i: int, status: str) -> dict:
    return rec("tracking_events", shipment_id=f"shp_{i:012d}", status=status)


FIRST = [ship(1, "UPS", 5), ship(2, "DHL", 5), ship(3, "UPS", 5), ship(4, "UPS", 6), ship(5, "DHL", 6),
         ship(6, "FEDEX", 6), event(1, "CREATED"), event(1, "DELIVERED"), event(2, "CREATED")]
DAILY = "SELECT dt, carrier, count(*) AS n FROM silver.shipments GROUP BY ALL ORDER BY ALL\n"
DAILY_ROWS = [(D5, "DHL", 1), (D5, "UPS", 2), (D6, "DHL", 1), (D6, "FEDEX", 1), (D6, "UPS", 1)]


def jsonl(*records: dict) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


@pytest.fixture
def lake(home: Path) -> Lake:
    lake = Lake.open(settings(home))
    land(lake, "shipments/a.jsonl", jsonl(*FIRST))
    assert run(lake.settings)["loaded"] == 9
    return lake


def model(home: Path, name: str, sql: str) -> Path:
    (home / "models").mkdir(exist_ok=True)
    path = home / "models" / f"{name}.sql"
    path.write_text(sql)
    return path


def specs(lake: Lake) -> list:
    return [t for _, t in registry(lake.settings).tables()]


def go(lake: Lake, **kw) -> list[tuple]:
    return [(r.name, r.status, r.rows, r.reason) for r in run_models(lake, specs(lake), **kw)]


def ran_models(summary: dict) -> list[tuple]:
    """The models a ``run`` materialised (or failed), as ``go`` reports them."""
    return [(m["name"], m["status"], m["rows"], m["reason"]) for m in summary["models"]]


def gold_file(home: Path, name: str) -> Path:
    return home / "zones" / "gold" / name / "data.parquet"


# ---- materialisation ----------------------------------------------------------------------------
def test_model_materialised_into_gold_with_its_rows(home, lake):
    model(home, "daily_counts", DAILY)
    [r] = run_models(lake, specs(lake))
    assert (r.name, r.status, r.rows, r.inputs, r.error, r.reason) == (
        "daily_counts", "SUCCEEDED", 5, ("silver.shipments",), None, "never materialised")
    assert r.location == str(gold_file(home, "daily_counts"))
    assert r.summary() == "model daily_counts: 5 rows into gold.daily_counts (inputs silver.shipments)"
    assert r.to_dict() == {"name": "daily_counts", "status": "SUCCEEDED", "rows": 5, "inputs": ["silver.shipments"],
                           "error": None, "location": r.location, "elapsed_s": r.elapsed_s,
                           "reason": "never materialised", "materialised_at": r.materialised_at}
    assert query(lake, "SELECT * FROM gold.daily_counts ORDER BY ALL") == DAILY_ROWS
    assert [i.key for i in lake.store.list("gold", "daily_counts/")] == ["daily_counts/data.parquet"]
    assert list(lake.work_dir.iterdir()) == []
    item = lake.state.get("models", "daily_counts").data
    assert {k: item[k] for k in ("status", "error", "rows", "inputs", "materialised_at")} == {
        "status": "SUCCEEDED", "error": None, "rows": 5, "inputs": ["silver.shipments"],
        "materialised_at": r.materialised_at}
    assert item["sql_sha256"] == hashlib.sha256(DAILY.encode()).hexdigest()
    assert item["etag"] == hashlib.md5(gold_file(home, "daily_counts").read_bytes()).hexdigest()
    parquet = [i for i in lake.store.list("silver", "shipments/") if i.key.endswith(".parquet")]
    assert item["fingerprints"] == {"silver.shipments": {
        "files": len(parquet), "bytes": sum(i.size for i in parquet),
        "last_modified": max(i.last_modified for i in parquet).isoformat()}}


def test_inputs_are_the_tables_read_not_ctes_strings_or_comments(tmp_path):
    path = tmp_path / "shipment_events.sql"
    path.write_text(
        "-- reads gold.not_an_input\n"
        "WITH ev AS (SELECT shipment_id, count(*) AS events FROM Silver.Tracking_Events GROUP BY ALL),\n"
        "     late AS (SELECT * FROM ev WHERE events > 1)\n"
        "SELECT s.shipment_id, s.carrier, coalesce(ev.events, 0) AS events, 'gold.fake' AS note\n"
        "FROM silver.shipments AS s LEFT JOIN ev USING (shipment_id)\n"
        "WHERE s.shipment_id NOT IN (SELECT shipment_id FROM late)\n"
        "UNION ALL SELECT NULL, NULL, count(*), NULL FROM \"retail_silver\".\"orders_silver$snapshots\";\n")
    m = parse_model(path)
    assert (m.name, m.path, m.sql) == ("shipment_events", path, path.read_text())
    assert m.inputs == ("retail_silver.orders_silver", "silver.shipments", "silver.tracking_events")
    assert [(r.table, r.line, r.col) for r in m.refs] == [
        ("silver.tracking_events", 2, 57), ("silver.shipments", 5, 6), ("retail_silver.orders_silver", 7, 50)]
    assert m.query == path.read_text()[len("-- reads gold.not_an_input\n"):].removesuffix(";\n")
    generated = tmp_path / "calendar.sql"
    generated.write_text("SELECT d FROM range(DATE '2026-01-01', DATE '2026-01-03', INTERVAL 1 DAY) t(d)")
    assert parse_model(generated).inputs == ()


def test_a_join_of_two_tables_with_a_cte(home, lake):
    model(home, "shipment_events", (
        "WITH ev AS (SELECT shipment_id, count(*) AS events FROM silver.tracking_events GROUP BY ALL)\n"
        "SELECT s.shipment_id, s.carrier, coalesce(ev.events, 0) AS events\n"
        "FROM silver.shipments AS s LEFT JOIN ev USING (shipment_id)  -- every shipment\n"))
    [r] = run_models(lake, specs(lake))
    assert (r.status, r.rows, r.inputs) == ("SUCCEEDED", 6, ("silver.shipments", "silver.tracking_events"))
    assert query(lake, "SELECT * FROM gold.shipment_events ORDER BY 1") == [
        ("shp_000000000001", "UPS", 2), ("shp_000000000002", "DHL", 1), ("shp_000000000003", "UPS", 0),
        ("shp_000000000004", "UPS", 0), ("shp_000000000005", "DHL", 0), ("shp_000000000006", "FEDEX", 0)]


def test_a_model_reading_another_runs_after_it(home, lake):
    # by name a_total would come first: the order is the dependency's
    model(home, "a_total", "SELECT carrier, sum(n) AS n FROM gold.z_daily GROUP BY ALL ORDER BY ALL")
    model(home, "z_daily", DAILY)
    model(home, "m_share", "SELECT d.carrier, d.n / t.n AS share FROM gold.z_daily d JOIN gold.a_total t "
                           "USING (carrier) WHERE d.dt = DATE '2026-01-05' ORDER BY ALL")
    assert [m.name for m in plan(discover(home), {"silver.shipments"})] == ["z_daily", "a_total", "m_share"]
    assert go(lake) == [("z_daily", "SUCCEEDED", 5, "never materialised"),
                        ("a_total", "SUCCEEDED", 3, "never materialised"),
                        ("m_share", "SUCCEEDED", 2, "never materialised")]
    assert query(lake, "SELECT * FROM gold.a_total ORDER BY ALL") == [("DHL", 2), ("FEDEX", 1), ("UPS", 3)]
    assert query(lake, "SELECT * FROM gold.m_share ORDER BY ALL") == [("DHL", 0.5), ("UPS", 2 / 3)]


def test_up_to_date_models_are_skipped_and_new_data_makes_them_due(home, lake):
    model(home, "daily", DAILY)
    model(home, "total", "SELECT sum(n) AS n FROM gold.daily")
    first = run_models(lake, specs(lake))
    before = {n: gold_file(home, n).stat().st_mtime_ns for n in ("daily", "total")}
    second = run_models(lake, specs(lake))
    assert [(r.name, r.status, r.rows, r.reason, r.materialised_at) for r in second] == [
        ("daily", "SKIPPED", 5, "up to date", first[0].materialised_at),
        ("total", "SKIPPED", 1, "up to date", first[1].materialised_at)]
    assert second[0].summary() == "model daily skipped: up to date (gold.daily holds 5 rows)"
    assert {n: gold_file(home, n).stat().st_mtime_ns for n in ("daily", "total")} == before

    land(lake, "shipments/b.jsonl", jsonl(ship(7, "UPS", 5)))
    # the run materialises the models its new data made due, after the pipelines
    assert ran_models(run(lake.settings)) == [("daily", "SUCCEEDED", 5, "input silver.shipments changed"),
                                              ("total", "SUCCEEDED", 1, "input model daily was materialised again")]
    assert query(lake, "SELECT * FROM gold.daily ORDER BY ALL") == [
        (D5, "DHL", 1), (D5, "UPS", 3), (D6, "DHL", 1), (D6, "FEDEX", 1), (D6, "UPS", 1)]
    assert query(lake, "SELECT n FROM gold.total") == [(7,)]
    assert go(lake) == [("daily", "SKIPPED", 5, "up to date"), ("total", "SKIPPED", 1, "up to date")]

    model(home, "total", "SELECT sum(n) AS n, count(*) AS groups FROM gold.daily")
    assert go(lake) == [("daily", "SKIPPED", 5, "up to date"), ("total", "SUCCEEDED", 1, "its SQL changed")]
    assert go(lake, only="daily") == [("daily", "SUCCEEDED", 5, "asked for by name")]
    # the same rows make the same file (same etag): total, reading it in a later call, is up to date
    assert go(lake) == [("daily", "SKIPPED", 5, "up to date"), ("total", "SKIPPED", 1, "up to date")]
    assert go(lake, force=True) == [("daily", "SUCCEEDED", 5, "forced"), ("total", "SUCCEEDED", 1, "forced")]
    gold_file(home, "total").unlink()
    assert go(lake) == [("daily", "SKIPPED", 5, "up to date"), ("total", "SUCCEEDED", 1, "gold.total is missing")]
    with pytest.raises(UsageError) as err:
        run_models(lake, specs(lake), only="nope")
    assert str(err.value) == f"no model 'nope'; models: daily, total (files {home / 'models'}/NAME.sql)"


def test_a_failing_model_keeps_its_previous_table_and_the_others_run(home, lake):
    model(home, "daily", DAILY)
    model(home, "origins", "SELECT DISTINCT origin FROM silver.shipments")
    model(home, "origin_count", "SELECT count(*) AS n FROM gold.origins")
    assert [r[1] for r in go(lake)] == ["SUCCEEDED"] * 3
    old = gold_file(home, "origins").read_bytes()

    model(home, "origins", "SELECT CAST(origin AS INTEGER) AS origin FROM silver.shipments")
    land(lake, "shipments/b.jsonl", jsonl(ship(7, "UPS", 5)))
    summary = run(lake.settings)
    error = "Conversion Error: Could not convert string 'SZX' to INT32 when casting from source column origin"
    assert [(m["name"], m["status"], m["rows"], m["reason"], m["error"]) for m in summary["models"]] == [
        ("daily", "SUCCEEDED", 5, "input silver.shipments changed", None),
        ("origins", "FAILED", 1, "its SQL changed", error),
        ("origin_count", "SKIPPED", 1, "input model origins failed", None)]
    assert summary["models"][1]["summary"] == f"model origins FAILED: {error} (gold.origins keeps its previous data)"
    assert gold_file(home, "origins").read_bytes() == old
    assert query(lake, "SELECT * FROM gold.origins") == [("SZX",)]
    assert list(lake.work_dir.iterdir()) == []
    status = {s["name"]: (s["status"], s["rows"], s["error"]) for s in model_status(lake, specs(lake))}
    assert status == {"daily": ("SUCCEEDED", 5, None), "origins": ("FAILED", 1, error),
                      "origin_count": ("SUCCEEDED", 1, None)}
    # a failed model is due again (nothing else changed): it fails again, its reader waits again
    assert go(lake) == [("daily", "SKIPPED", 5, "up to date"), ("origins", "FAILED", 1, "its last attempt failed"),
                        ("origin_count", "SKIPPED", 1, "input model origins failed")]
    model(home, "origins", "SELECT DISTINCT origin, 'x' AS tag FROM silver.shipments")
    assert go(lake) == [("daily", "SKIPPED", 5, "up to date"), ("origins", "SUCCEEDED", 1, "its last attempt failed"),
                        ("origin_count", "SUCCEEDED", 1, "input model origins was materialised again")]
    assert query(lake, "SELECT * FROM gold.origins") == [("SZX", "x")]


def test_a_skipped_model_skips_its_readers_too(home, lake):
    model(home, "a", "SELECT CAST(origin AS INTEGER) AS o FROM silver.shipments")
    model(home, "b", "SELECT * FROM gold.a")
    model(home, "c", "SELECT * FROM gold.b")
    assert [(r.name, r.status, r.rows, r.reason) for r in run_models(lake, specs(lake))] == [
        ("a", "FAILED", None, "never materialised"), ("b", "SKIPPED", None, "input model a failed"),
        ("c", "SKIPPED", None, "input model b was skipped")]
    assert run_models(lake, specs(lake))[2].summary() == \
        "model c skipped: input model b was skipped (no gold.c yet)"
    assert not gold_file(home, "a").exists()


# ---- lineage ------------------------------------------------------------------------------------
def test_each_materialisation_is_a_lineage_root_with_its_inputs(home, lake):
    path = model(home, "shipment_events", (
        "SELECT s.carrier, count(t.status) AS events FROM silver.shipments s "
        "LEFT JOIN silver.tracking_events t USING (shipment_id) GROUP BY ALL"))
    [r] = run_models(lake, specs(lake))
    root = derived_id("model", "shipment_events", r.materialised_at)
    [node] = lake.lineage.tree(root)
    assert (node.root_id, node.node_id, node.parent_id, node.action_taken, node.storage_location) == (
        root, node_id(root, "MODEL_MATERIALISED"), root, "MODEL_MATERIALISED", str(gold_file(home, "shipment_events")))
    assert node.attrs == {"model": "shipment_events", "inputs": ["silver.shipments", "silver.tracking_events"],
                          "rows": 3, "sql_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert [n.root_id for n in lake.lineage.by_action("MODEL_MATERIALISED")] == [root]
    [again] = run_models(lake, specs(lake), force=True)
    assert again.materialised_at != r.materialised_at
    assert sorted(n.root_id for n in lake.lineage.by_action("MODEL_MATERIALISED")) == sorted(
        [root, derived_id("model", "shipment_events", again.materialised_at)])


def test_a_failing_ledger_never_fails_a_model(home, lake, monkeypatch, caplog):
    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(SqliteLedger, "_put", broken)
    model(home, "daily", DAILY)
    with caplog.at_level(logging.WARNING, logger="lakeline.lineage"):
        assert go(lake) == [("daily", "SUCCEEDED", 5, "never materialised")]
    assert [r.getMessage() for r in caplog.records if r.name == "lakeline.lineage"] == [
        "lineage model materialised failed; the data path continues"]
    assert query(lake, "SELECT count(*) FROM gold.daily") == [(5,)]


# ---- bad input ----------------------------------------------------------------------------------
PARSE_ERRORS = [
    ("broken", "SELECT dt,\n  count(*\nFROM silver.shipments",
     ":3:1: model broken does not parse: Expecting ) (at 'FROM'); " + ALLOWED),
    ("unclosed", "SELECT 'abc FROM silver.shipments",
     ": model unclosed does not parse: Error tokenizing 'SELECT 'abc FROM silver.shipment'; " + ALLOWED),
    ("two", "SELECT 1 AS a FROM silver.shipments;\n\nSELECT 2",
     ":3:1: model two has more than one statement; " + ALLOWED + " (lakeline writes gold.two itself)"),
    ("empty", "-- nothing yet\n;\n", ": model empty is empty; " + ALLOWED),
    ("ins", "INSERT INTO gold.x SELECT 1", ":1:1: model ins is INSERT, not a query; a model is one SELECT, "
     "WITH … SELECT or UNION of SELECTs over lake tables (lakeline writes gold.ins itself)"),
    ("make", "-- make it\nCREATE TABLE gold.x AS SELECT 1", ":2:1: model make is CREATE, not a query; a model "
     "is one SELECT, WITH … SELECT or UNION of SELECTs over lake tables (lakeline writes gold.make itself)"),
    ("out", "COPY silver.shipments TO 'x.csv'", ":1:1: model out is COPY, not a query; a model is one SELECT, "
     "WITH … SELECT or UNION of SELECTs over lake tables (lakeline writes gold.out itself)"),
    ("wipe", "DELETE FROM silver.shipments", ":1:1: model wipe is DELETE, not a query; a model is one SELECT, "
     "WITH … SELECT or UNION of SELECTs over lake tables (lakeline writes gold.wipe itself)"),
    ("bare", "SELECT *\nFROM shipments", ":2:6: model bare reads 'shipments' without a schema; qualify it as "
     "the lake names it, like silver.shipments or gold.shipments (`lakeline tables` lists them)"),
    ("cte_elsewhere", "SELECT * FROM (WITH a AS (SELECT 1) SELECT * FROM a) JOIN b ON true",
     ":1:59: model cte_elsewhere reads 'b' without a schema; qualify it as the lake names it, like silver.b or "
     "gold.b (`lakeline tables` lists them)"),
    ("first_in_text", "SELECT (SELECT max(v) FROM first_one) AS m\nFROM second_one",
     ":1:28: model first_in_text reads 'first_one' without a schema; qualify it as the lake names it, like "
     "silver.first_one or gold.first_one (`lakeline tables` lists them)"),
    ("reader", "SELECT * FROM read_parquet('/etc/x.parquet')",
     ": model reader reads the table function READ_PARQUET('/etc/x.parquet'); " + ALLOWED +
     " (only range and generate_series may stand in FROM: lakeline could not track what other functions read)"),
    ("afile", "SELECT * FROM 'x.parquet'",
     ":1:15: model afile reads the file 'x.parquet'; " + ALLOWED + " (lakeline could not track what a file holds)"),
    ("catalog", "SELECT * FROM lake.silver.shipments", ":1:15: model catalog names lake.silver.shipments with a "
     "catalog; write schema.table, like silver.shipments (" + ALLOWED + ")"),
]


@pytest.mark.parametrize(("name", "sql", "message"), PARSE_ERRORS, ids=[c[0] for c in PARSE_ERRORS])
def test_a_file_that_is_not_a_model_is_refused_with_its_place(tmp_path, name, sql, message):
    path = tmp_path / "models" / f"{name}.sql"
    path.parent.mkdir()
    path.write_text(sql)
    with pytest.raises(ConfigError) as err:
        discover(tmp_path)
    assert str(err.value) == f"{path}{message}"


@pytest.mark.parametrize("name", ["Daily", "a__b", "9lives", "_hidden", "daily-counts"])
def test_a_model_name_must_be_a_plain_table_name(tmp_path, name):
    path = tmp_path / "models" / f"{name}.sql"
    path.parent.mkdir()
    path.write_text("SELECT 1")
    with pytest.raises(ConfigError) as err:
        discover(tmp_path)
    assert str(err.value) == (
        f"{path}: {name!r} is not a valid model name; the file name is the table name gold.NAME, so it must be "
        "lower-case letters, digits and _, start with a letter and have no __ (e.g. daily_counts.sql)")


def plan_error(home: Path, known: set[str], **files: str) -> str:
    for name, sql in files.items():
        model(home, name, sql)
    with pytest.raises(ConfigError) as err:
        plan(discover(home), known)
    return str(err.value)


def test_a_table_that_does_not_exist(home):
    message = plan_error(home, {"silver.shipments", "quarantine.rejects"},
                         daily=DAILY, late="SELECT *\n  FROM gold.daily JOIN silver.shipmnets USING (dt)")
    assert message == (f"{home / 'models' / 'late.sql'}:2:24: model late reads silver.shipmnets, which does not "
                       "exist; tables: gold.daily, gold.late, quarantine.rejects, silver.shipments")


def test_a_cycle_between_models_is_named(home):
    message = plan_error(home, {"silver.shipments"}, c="SELECT * FROM gold.b", b="SELECT * FROM gold.a",
                         a="SELECT 1 AS x FROM silver.shipments\nUNION ALL SELECT * FROM gold.c")
    assert message == (f"{home / 'models' / 'a.sql'}:2:25: models form a cycle: a reads gold.c, c reads gold.b, "
                       "b reads gold.a; a model cannot read itself, even through others")
    for name in "abc":
        (home / "models" / f"{name}.sql").unlink()
    assert plan_error(home, {"silver.shipments"}, me="SELECT * FROM gold.me") == (
        f"{home / 'models' / 'me.sql'}:1:15: models form a cycle: me reads gold.me; a model cannot read itself, "
        "even through others")


def test_a_model_named_like_a_pipeline_table(home, lake):
    path = model(home, "emissions", "SELECT 1 AS x")  # gold.emissions: the carbon pipeline's table
    with pytest.raises(ConfigError) as err:
        run_models(lake, specs(lake))
    assert str(err.value) == (f"{path}: model emissions would replace gold.emissions, a table a pipeline writes; "
                              "rename the file (the file name is the table name)")
    path.unlink()
    lake.store.put("gold", "report/part-0.parquet", _parquet())  # a gold table a pipeline wrote
    path = model(home, "report", "SELECT 1 AS x")
    with pytest.raises(ConfigError) as err:
        run_models(lake, specs(lake))
    assert str(err.value) == (f"{path}: model report would replace gold.report, a table a pipeline writes; "
                              "rename the file (the file name is the table name)")


def test_a_missing_table_in_the_lake_is_reported_with_the_known_tables(home, lake):
    path = model(home, "late", "SELECT * FROM silver.late_arrivals")
    with pytest.raises(ConfigError) as err:
        run_models(lake, specs(lake))
    known = sorted({t.name for t in specs(lake)} | {"gold.late"})
    assert str(err.value) == (f"{path}:1:15: model late reads silver.late_arrivals, which does not exist; "
                              f"tables: {', '.join(known)}")
    assert lake.state.get("models", "late") is None


def _parquet() -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.table({"x": [1]}), buf)
    return buf.getvalue()


def test_an_iceberg_input_is_due_when_its_snapshot_moves(home):
    import pyarrow as pa

    from lakeline.tables import iceberg

    lake = Lake.open(settings(home))
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("kind", pa.string())])
    iceberg.ensure_table(lake, "shop.orders", schema, [])

    def append(batch: str, *kinds: str) -> int:
        ids = [int(batch) * 10 + i for i in range(len(kinds))]
        iceberg.append_batch(lake, "shop.orders", pa.table({"id": pa.array(ids, pa.int64()), "kind": list(kinds)},
                                                            schema=schema), batch)
        return iceberg.load_table(lake, "shop.orders").current_snapshot().snapshot_id

    first = append("1", "a", "b", "a")
    model(home, "kinds", 'SELECT kind, count(*) AS n, (SELECT count(*) FROM shop."orders$snapshots") AS snapshots '
                         "FROM shop.orders GROUP BY ALL ORDER BY ALL")
    assert go(lake) == [("kinds", "SUCCEEDED", 2, "never materialised")]
    assert lake.state.get("models", "kinds").data["fingerprints"] == {"shop.orders": {"snapshot_id": first}}
    assert query(lake, "SELECT * FROM gold.kinds") == [("a", 2, 1), ("b", 1, 1)]
    assert go(lake) == [("kinds", "SKIPPED", 2, "up to date")]
    second = append("2", "c")
    assert go(lake) == [("kinds", "SUCCEEDED", 3, "input shop.orders changed")]
    assert lake.state.get("models", "kinds").data["fingerprints"] == {"shop.orders": {"snapshot_id": second}}
    assert query(lake, "SELECT * FROM gold.kinds") == [("a", 2, 2), ("b", 1, 2), ("c", 1, 2)]


def test_a_model_file_changed_between_calls_of_a_reader(home, lake):
    model(home, "daily", DAILY)
    model(home, "total", "SELECT sum(n) AS n FROM gold.daily")
    go(lake)
    # daily alone runs again with other rows (a run would materialise total as well)
    model(home, "daily", DAILY.replace("FROM silver.shipments", "FROM silver.shipments WHERE carrier <> 'FEDEX'"))
    assert go(lake, only="daily") == [("daily", "SUCCEEDED", 4, "asked for by name")]
    # total did not run with daily, but daily's file (its etag) is not the one total last read
    assert go(lake) == [("daily", "SKIPPED", 4, "up to date"), ("total", "SUCCEEDED", 1, "input gold.daily changed")]
    assert query(lake, "SELECT n FROM gold.total") == [(5,)]
