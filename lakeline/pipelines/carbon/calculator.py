"""The CO2e calculator of ``carbon.md``, vectorised in DuckDB.

One query per batch joins the records to the factor table on (category, activity) —
trimmed, case-insensitive — and to the unit table twice (record unit, factor unit):

* gas amount in tonnes = ``amount in factor units * <gas> factor (kg/unit) / 1000``;
* ``co2e_ar4 = co2 + 25·ch4 + 298·n2o`` and ``co2e_ar5 = co2 + 28·ch4 + 265·n2o``;
* the output keeps every input field (``scope`` as an integer, ``raw_data`` as a double) and
  adds ``emissions_output`` in carbon.md's nested shape, plus ``_factors {name, sha256}``
  (the table the result used), ``_lineage {root_id, parent_id}`` and ``_source {key, line_no}``.

A record is never dropped: one without a factor (``FACTOR_NOT_FOUND``), with units that cannot
be reconciled with the factor's (``UNIT_MISMATCH``) or with a non-numeric ``raw_data`` /
``scope`` (``TYPE_ERROR``; so is a ``raw_data`` that is not finite -- ``NaN``, ``inf``,
``1e400`` -- or one whose emission overflows to infinity) comes back as a reject row
(``lakeline.stages.transform``'s reject schema) with a message naming the values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lakeline import reasons
from lakeline.pipelines.carbon.factors import FactorTable
from lakeline.pipelines.carbon.units import NORMALISE_SQL, units_table
from lakeline.stages.rejects import REJECT_COLUMNS

#: Input columns of a carbon activity CSV (carbon.md), in order.
INPUT_COLUMNS = ("activity_event_id", "asset_id", "geo", "origin_measurement_timestamp", "scope",
                 "category", "activity", "source", "raw_data", "units")
GWP = {"ar4": {"ch4": 25, "n2o": 298}, "ar5": {"ch4": 28, "n2o": 265}}

_GAS = "{{'amount': {x}, 'unit': 'tonnes'}}"


@dataclass(frozen=True)
class BatchResult:
    """Calculated rows (sorted by their gold shard, column ``_shard``) and rejects (in line
    order) of one batch, as Arrow tables. ``nodes`` holds each row's record-level lineage: ``node_id``
    (``activity_event_id``, or ``line:<n>`` without one), ``action_taken``
    (``CALCULATION_COMPLETE`` / ``CALCULATION_FAILED``), ``attrs`` (``{reason, line_no}`` as
    JSON for a failure, else null) and ``line_no``."""

    calculated: pa.Table
    rejects: pa.Table
    nodes: pa.Table


def co2e(ar: str) -> str:
    """SQL of the CO2e in tonnes by the ``ar`` GWPs, from the gases in tonnes."""
    g = GWP[ar]
    return f"co2_t + {g['ch4']} * ch4_t + {g['n2o']} * n2o_t"


def _emissions_sql() -> str:
    gases = ", ".join(f"'{gas}': {_GAS.format(x=gas + '_t')}" for gas in ("co2", "ch4", "n2o"))
    return (
        "{'calculated_emissions': {" + gases + ", 'co2e': {"
        f"'ar4': {_GAS.format(x=co2e('ar4'))}, 'ar5': {_GAS.format(x=co2e('ar5'))}"
        "}}, 'emissions_factor': {"
        "'ar4': {'amount': ar4_kg, 'unit': 'kgCO2e/unit'}, 'ar5': {'amount': ar5_kg, 'unit': 'kgCO2e/unit'}"
        "}}"
    )


def register(con: duckdb.DuckDBPyConnection, factors: FactorTable) -> None:
    """Load the factor table (with its match keys and normalised unit precomputed) and the
    unit table into ``con``; once per connection and factor table."""
    con.register("carbon_factors_in", factors.table)
    con.register("carbon_units_in", units_table())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE carbon_factors AS
        SELECT *, lower(trim(category)) AS cat_key, lower(trim(activity)) AS act_key,
               {NORMALISE_SQL.format(u="units")} AS unit_norm
        FROM carbon_factors_in""")
    con.execute("CREATE OR REPLACE TEMP TABLE carbon_units AS SELECT * FROM carbon_units_in")
    con.unregister("carbon_factors_in")
    con.unregister("carbon_units_in")


#: Columns of a calculated row, in order.
CALCULATED_COLUMNS = ("activity_event_id", "asset_id", "geo", "origin_measurement_timestamp", "scope",
                      "category", "activity", "source", "raw_data", "units", "emissions_output",
                      "_factors", "_lineage", "_source", "_calculated_at")
#: The gold shard of a result (``gold.emissions`` is 16 files by the first hex digit of the
#: MD5 of ``activity_event_id``); calculated rows come out sorted by it, in column ``_shard``.
SHARD_SQL = "left(md5(activity_event_id), 1)"


def calculate(
    con: duckdb.DuckDBPyConnection, batch: str, factors: FactorTable, *, root_id: str, parent_id: str,
    source_key: str, calculated_at: datetime,
) -> BatchResult:
    """Calculate one batch: ``batch`` is a relation with :data:`INPUT_COLUMNS` as text plus
    ``_line_no`` (the record's line in its raw file). :func:`register` must have run on ``con``.

    One query computes every row with its reject reason (NULL when it calculated); the two
    results are cut from it with Arrow filters."""
    ru = NORMALISE_SQL.format(u="s.units")
    raw = ", ".join(f"'{c}': {c}" for c in INPUT_COLUMNS)
    sql = f"""
        WITH j AS (
            SELECT s.*, f.co2_kg, f.ch4_kg, f.n2o_kg, f.ar4_kg, f.ar5_kg, f.units AS factor_units,
                   f.activity IS NOT NULL AS matched,
                   TRY_CAST(s.raw_data AS DOUBLE) AS amount, TRY_CAST(s.scope AS INTEGER) AS scope_int,
                   CASE WHEN {ru} = f.unit_norm THEN 1.0
                        WHEN r.dimension = u.dimension THEN r.size / u.size END AS to_factor_units
            FROM {batch} s
            LEFT JOIN carbon_factors f
                   ON f.cat_key = lower(trim(s.category)) AND f.act_key = lower(trim(s.activity))
            LEFT JOIN carbon_units r ON r.spelling = {ru}
            LEFT JOIN carbon_units u ON u.spelling = f.unit_norm
        ), t AS (
            SELECT *, CASE WHEN NOT matched THEN '{reasons.FACTOR_NOT_FOUND}'
                           WHEN amount IS NULL OR scope_int IS NULL OR NOT isfinite(amount)
                           THEN '{reasons.TYPE_ERROR}'
                           WHEN to_factor_units IS NULL THEN '{reasons.UNIT_MISMATCH}' END AS input_reason,
                      amount * to_factor_units AS q
            FROM j
        ), g0 AS (
            SELECT *, q * co2_kg / 1000 AS co2_t, q * ch4_kg / 1000 AS ch4_t, q * n2o_kg / 1000 AS n2o_t
            FROM t
        ), g AS (
            -- a finite amount can still overflow (1.7e308 gal): never NaN or inf in gold
            SELECT *, coalesce(input_reason,
                               CASE WHEN NOT (isfinite({co2e("ar4")}) AND isfinite({co2e("ar5")})
                                              AND isfinite(q)) THEN '{reasons.TYPE_ERROR}' END) AS reason_code
            FROM g0
        )
        SELECT activity_event_id, asset_id, geo, origin_measurement_timestamp, scope_int AS scope,
               category, activity, source, amount AS raw_data, units,
               CASE WHEN reason_code IS NULL THEN {_emissions_sql()} END AS emissions_output,
               {{'name': p.factors_name, 'sha256': p.factors_sha256}} AS _factors,
               {{'root_id': p.root_id, 'parent_id': p.parent_id}} AS _lineage,
               {{'key': p.source_key, 'line_no': _line_no}} AS _source,
               p.at AS _calculated_at, {SHARD_SQL} AS _shard,
               'carbon' AS pipeline, NULL::VARCHAR AS bucket, p.source_key AS key, NULL::VARCHAR AS etag,
               NULL::BIGINT AS chunk, _line_no::BIGINT AS line_no, NULL::BIGINT AS byte_offset,
               category AS record_type, reason_code,
               CASE reason_code
                    WHEN '{reasons.FACTOR_NOT_FOUND}' THEN printf(
                        'no emission factor for category %s, activity %s',
                        to_json(category), to_json(activity))
                    WHEN '{reasons.TYPE_ERROR}' THEN CASE WHEN raw_data IS NULL THEN 'raw_data is missing'
                        WHEN amount IS NULL THEN printf('raw_data %s is not a number', to_json(raw_data))
                        WHEN scope_int IS NULL THEN printf('scope %s is not an integer', to_json(scope))
                        WHEN NOT isfinite(amount)
                        THEN printf('raw_data %s is not a finite number', to_json(raw_data))
                        ELSE printf('raw_data %s gives an emission that is not a finite number',
                                    to_json(raw_data)) END
                    WHEN '{reasons.UNIT_MISMATCH}' THEN printf(
                        'units %s cannot be converted to the factor''s units %s',
                        to_json(units), to_json(factor_units)) END AS message,
               CASE WHEN reason_code IS NOT NULL THEN to_json({{{raw}}})::VARCHAR END AS raw,
               p.at AS rejected_at,
               coalesce(activity_event_id, 'line:' || _line_no) AS node_id,
               CASE WHEN reason_code IS NULL THEN 'CALCULATION_COMPLETE' ELSE 'CALCULATION_FAILED' END
                   AS action_taken,
               CASE WHEN reason_code IS NOT NULL
                    THEN to_json({{'reason': reason_code, 'line_no': _line_no}})::VARCHAR END AS attrs
        FROM g CROSS JOIN {batch}_params p ORDER BY _shard
    """
    # Prepared once per connection and relation (planning this query costs more than running
    # it on 1,000 rows); the batch's constants come from a one-row relation, not parameters,
    # because EXECUTE cannot take bound parameters.
    con.register(f"{batch}_params", pa.table({
        "factors_name": [factors.name], "factors_sha256": [factors.sha256], "root_id": [root_id],
        "parent_id": [parent_id], "source_key": [source_key],
        "at": pa.array([calculated_at], pa.timestamp("us", tz="UTC"))}))
    statement = f"carbon_calc_{batch}"
    try:
        try:
            table = con.sql(f"EXECUTE {statement}").to_arrow_table()
        except duckdb.Error as exc:
            if statement not in str(exc):
                raise
            con.execute(f"PREPARE {statement} AS {sql}")
            table = con.sql(f"EXECUTE {statement}").to_arrow_table()
    finally:
        con.unregister(f"{batch}_params")
    ok = pc.is_null(table.column("reason_code"))
    good, bad = table.filter(ok), table.filter(pc.invert(ok))
    return BatchResult(
        calculated=good.select([*CALCULATED_COLUMNS, "_shard"]),
        rejects=bad.select([*REJECT_COLUMNS, "activity_event_id"]).sort_by("line_no"),
        nodes=table.select(["node_id", "action_taken", "attrs", "line_no"]),
    )
