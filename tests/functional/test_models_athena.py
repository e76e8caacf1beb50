"""Issue 17, part 5: every model the model tests ship, translated to the Athena SQL a CTAS runs
(`lakeline models run --engine athena`): Glue names, GROUP BY ALL / ORDER BY ALL spelled out,
DuckDB's float division kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from lakeline.errors import UsageError
from lakeline.models.athena import athena_query, ctas
from lakeline.models.spec import parse_model
from tests.functional.test_models import DAILY

#: the models of tests/functional/test_models*.py, each with its Athena SQL
MODELS = {
    "daily": (DAILY, 'SELECT dt, carrier, COUNT(*) AS n FROM "lake_x"."shipments" GROUP BY 1, 2 ORDER BY 1, 2, 3'),
    "shipment_events": (
        "WITH ev AS (SELECT shipment_id, count(*) AS events FROM silver.tracking_events GROUP BY ALL)\n"
        "SELECT s.shipment_id, s.carrier, coalesce(ev.events, 0) AS events\n"
        "FROM silver.shipments AS s LEFT JOIN ev USING (shipment_id)  -- every shipment\n",
        'WITH ev AS (SELECT shipment_id, COUNT(*) AS events FROM "lake_x"."tracking_events" GROUP BY 1) '
        'SELECT s.shipment_id, s.carrier, COALESCE(ev.events, 0) AS events FROM "lake_x"."shipments" AS s '
        "LEFT JOIN ev USING (shipment_id)"),
    "a_total": ("SELECT carrier, sum(n) AS n FROM gold.z_daily GROUP BY ALL ORDER BY ALL",
                'SELECT carrier, SUM(n) AS n FROM "lake_x"."gold_z_daily" GROUP BY 1 ORDER BY 1, 2'),
    "m_share": ("SELECT d.carrier, d.n / t.n AS share FROM gold.z_daily d JOIN gold.a_total t USING (carrier) "
                "WHERE d.dt = DATE '2026-01-05' ORDER BY ALL",
                'SELECT d.carrier, CAST(d.n AS DOUBLE) / t.n AS share FROM "lake_x"."gold_z_daily" AS d JOIN '
                '"lake_x"."gold_a_total" AS t USING (carrier) WHERE d.dt = CAST(\'2026-01-05\' AS DATE) ORDER BY 1, 2'),
    "total": ("SELECT sum(n) AS n, count(*) AS groups FROM gold.daily",
              'SELECT SUM(n) AS n, COUNT(*) AS groups FROM "lake_x"."gold_daily"'),
    "origins": ("SELECT DISTINCT origin, 'x' AS tag FROM silver.shipments",
                'SELECT DISTINCT origin, \'x\' AS tag FROM "lake_x"."shipments"'),
    "origin_count": ("SELECT count(*) AS n FROM gold.origins", 'SELECT COUNT(*) AS n FROM "lake_x"."gold_origins"'),
    "a": ("SELECT CAST(origin AS INTEGER) AS o FROM silver.shipments",
          'SELECT CAST(origin AS INTEGER) AS o FROM "lake_x"."shipments"'),
    "b": ("SELECT * FROM gold.a", 'SELECT * FROM "lake_x"."gold_a"'),
    "kinds": ('SELECT kind, count(*) AS n, (SELECT count(*) FROM shop."orders$snapshots") AS snapshots '
              "FROM shop.orders GROUP BY ALL ORDER BY ALL",
              'SELECT kind, COUNT(*) AS n, (SELECT COUNT(*) FROM shop."orders$snapshots") AS snapshots '
              "FROM shop.orders GROUP BY 1 ORDER BY 1, 2, 3"),
    "bad": ("SELECT CAST(carrier AS INTEGER) AS c FROM silver.shipments WHERE carrier = 'DHL'",
            'SELECT CAST(carrier AS INTEGER) AS c FROM "lake_x"."shipments" WHERE carrier = \'DHL\''),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_test_model_translates_to_athena_sql(tmp_path: Path, name: str) -> None:
    duck, athena = MODELS[name]
    path = tmp_path / f"{name}.sql"
    path.write_text(duck)
    got = athena_query(parse_model(path), "lake_x")
    assert got == athena
    assert sqlglot.parse_one(got, read="athena") is not None  # Athena SQL that parses back


def test_the_ctas_writes_zstd_parquet_to_its_scratch_location(tmp_path: Path) -> None:
    path = tmp_path / "total.sql"
    path.write_text("SELECT sum(n) AS n FROM gold.daily")
    assert ctas(parse_model(path), "lake_x", "lakeline_tmp_total_v1", "s3://tmp-bucket/athena/models/total/v1/") == (
        'CREATE TABLE "lake_x"."lakeline_tmp_total_v1" WITH (format = \'PARQUET\', write_compression = \'ZSTD\', '
        "external_location = 's3://tmp-bucket/athena/models/total/v1/') AS\n"
        'SELECT SUM(n) AS n FROM "lake_x"."gold_daily"')


def test_a_date_spine_model_is_refused_for_athena_naming_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "calendar.sql"
    path.write_text("SELECT d FROM range(DATE '2026-01-01', DATE '2026-01-03', INTERVAL 1 DAY) t(d)")
    with pytest.raises(UsageError, match="model calendar uses range\\(\\)/generate_series\\(\\), .* --engine duckdb"):
        athena_query(parse_model(path), "lake_x")
