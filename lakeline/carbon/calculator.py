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
``scope`` (``TYPE_ERROR``) comes back as a reject row (``lakeline.stages.transform``'s reject
schema) with a message naming the values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from lakeline import reasons
from lakeline.carbon.factors import FactorTable
from lakeline.carbon.units import NORMALISE_SQL, units_table

#: Input columns of a carbon activity CSV (carbon.md), in order.
INPUT_COLUMNS = ("activity_event_id", "asset_id", "geo", "origin_measurement_timestamp", "scope",
                 "category", "activity", "source", "raw_data", "units")
GWP = {"ar4": {"ch4": 25, "n2o": 298}, "ar5": {"ch4": 28, "n2o": 265}}

_GAS = "{{'amount': {x}, 'unit': 'tonnes'}}"


@dataclass(frozen=True)
class BatchResult:
    """Calculated rows and rejects of one batch (both Arrow tables)."""

    calculated: pa.Table
    rejects: pa.Table


def _emissions_sql() -> str:
    def co2e(ar: str) -> str:
        g = GWP[ar]
        return f"co2_t + {g['ch4']} * ch4_t + {g['n2o']} * n2o_t"

    gases = ", ".join(f"'{gas}': {_GAS.format(x=gas + '_t')}" for gas in ("co2", "ch4", "n2o"))
    return (
        "{'calculated_emissions': {" + gases + ", 'co2e': {"
        f"'ar4': {_GAS.format(x=co2e('ar4'))}, 'ar5': {_GAS.format(x=co2e('ar5'))}"
        "}}, 'emissions_factor': {"
        "'ar4': {'amount': ar4_kg, 'unit': 'kgCO2e/unit'}, 'ar5': {'amount': ar5_kg, 'unit': 'kgCO2e/unit'}"
        "}}"
    )


def register(con: duckdb.DuckDBPyConnection, factors: FactorTable) -> None:
    """Register the factor and unit tables on ``con`` (once per connection and table)."""
    con.register("carbon_factors", factors.table)
    con.register("carbon_units", units_table())


def calculate(
    con: duckdb.DuckDBPyConnection, batch: str, factors: FactorTable, *, root_id: str, parent_id: str,
    source_key: str, calculated_at: datetime,
) -> BatchResult:
    """Calculate one batch: ``batch`` is a relation with :data:`INPUT_COLUMNS` as text plus
    ``_line_no`` (the record's line in its raw file). :func:`register` must have run on ``con``."""
    ru = NORMALISE_SQL.format(u="s.units")
    fu = NORMALISE_SQL.format(u="f.units")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE carbon_joined AS
        SELECT s.*, f.co2_kg, f.ch4_kg, f.n2o_kg, f.ar4_kg, f.ar5_kg, f.units AS factor_units,
               f.activity IS NOT NULL AS matched,
               TRY_CAST(s.raw_data AS DOUBLE) AS amount, TRY_CAST(s.scope AS INTEGER) AS scope_int,
               CASE WHEN {ru} = {fu} THEN 1.0
                    WHEN r.dimension = u.dimension THEN r.size / u.size END AS to_factor_units
        FROM {batch} s
        LEFT JOIN carbon_factors f
               ON lower(trim(f.category)) = lower(trim(s.category))
              AND lower(trim(f.activity)) = lower(trim(s.activity))
        LEFT JOIN carbon_units r ON r.spelling = {ru}
        LEFT JOIN carbon_units u ON u.spelling = {fu}
    """)
    calculated = con.sql(f"""
        WITH t AS (
            SELECT *, amount * to_factor_units AS q FROM carbon_joined
            WHERE matched AND amount IS NOT NULL AND scope_int IS NOT NULL AND to_factor_units IS NOT NULL
        ), g AS (
            SELECT *, q * co2_kg / 1000 AS co2_t, q * ch4_kg / 1000 AS ch4_t,
                   q * n2o_kg / 1000 AS n2o_t FROM t
        )
        SELECT activity_event_id, asset_id, geo, origin_measurement_timestamp, scope_int AS scope,
               category, activity, source, amount AS raw_data, units,
               {_emissions_sql()} AS emissions_output,
               {{'name': $name, 'sha256': $sha}} AS _factors,
               {{'root_id': $root, 'parent_id': $parent}} AS _lineage,
               {{'key': $key, 'line_no': _line_no}} AS _source,
               $at::TIMESTAMPTZ AS _calculated_at
        FROM g ORDER BY _line_no
    """, params={"name": factors.name, "sha": factors.sha256, "root": root_id, "parent": parent_id,
                 "key": source_key, "at": calculated_at}).to_arrow_table()
    rejects = con.sql(f"""
        SELECT 'carbon' AS pipeline, NULL::VARCHAR AS bucket, $key AS key, NULL::VARCHAR AS etag,
               NULL::BIGINT AS chunk, _line_no::BIGINT AS line_no, NULL::BIGINT AS byte_offset,
               category AS record_type,
               CASE WHEN NOT matched THEN '{reasons.FACTOR_NOT_FOUND}'
                    WHEN amount IS NULL OR scope_int IS NULL THEN '{reasons.TYPE_ERROR}'
                    ELSE '{reasons.UNIT_MISMATCH}' END AS reason_code,
               CASE WHEN NOT matched THEN printf('no emission factor for category %s, activity %s',
                                                 to_json(category), to_json(activity))
                    WHEN amount IS NULL THEN printf('raw_data %s is not a number', to_json(raw_data))
                    WHEN scope_int IS NULL THEN printf('scope %s is not an integer', to_json(scope))
                    ELSE printf('units %s cannot be converted to the factor''s units %s',
                                to_json(units), to_json(factor_units)) END AS message,
               to_json({{{", ".join(f"'{c}': {c}" for c in INPUT_COLUMNS)}}})::VARCHAR AS raw,
               $at::TIMESTAMPTZ AS rejected_at,
               activity_event_id
        FROM carbon_joined
        WHERE NOT (matched AND amount IS NOT NULL AND scope_int IS NOT NULL AND to_factor_units IS NOT NULL)
        ORDER BY _line_no
    """, params={"key": source_key, "at": calculated_at}).to_arrow_table()
    return BatchResult(calculated, rejects)
