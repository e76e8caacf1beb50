"""Emission factor tables: the packaged EPA / GHG Protocol table or a user's own.

A table is a CSV with the columns of ``carbon.md`` (``scope, category, lookup name,
CO2 Factor (kg / unit), CH4 Factor (kg / unit), N2O Factor (kg / unit), AR4 (kgCO2e),
AR5 (kgCO2e), Units, Source``), UTF-8 with or without a BOM, quoted fields allowed. It is
checked on load — a missing column, a non-numeric factor or a repeated (category, lookup
name) is a :class:`ConfigError` naming the file, line and reason; an empty factor is 0 — and
identified by the
SHA-256 of its bytes, which every result records.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pyarrow as pa

from lakeline.duck import duckdb_connection
from lakeline.errors import ConfigError

PACKAGED_NAME = "ghg_emission_factors.csv"

#: CSV column → column of the loaded table.
COLUMNS: dict[str, str] = {
    "scope": "scope",
    "category": "category",
    "lookup name": "activity",
    "CO2 Factor (kg / unit)": "co2_kg",
    "CH4 Factor (kg / unit)": "ch4_kg",
    "N2O Factor (kg / unit)": "n2o_kg",
    "AR4 (kgCO2e)": "ar4_kg",
    "AR5 (kgCO2e)": "ar5_kg",
    "Units": "units",
    "Source": "source",
}
_NUMERIC = ("co2_kg", "ch4_kg", "n2o_kg", "ar4_kg", "ar5_kg")


@dataclass(frozen=True)
class FactorTable:
    """A loaded factor table: rows as Arrow plus where it came from."""

    name: str
    sha256: str
    table: pa.Table

    @property
    def rows(self) -> int:
        return self.table.num_rows


_cache: dict[tuple[str, int, int], FactorTable] = {}
_lock = threading.Lock()


def packaged_path() -> Path:
    """Path of the factor table shipped with lakeline."""
    return Path(str(resources.files("lakeline.pipelines.carbon") / PACKAGED_NAME))


def load_factors(path: str | Path | None = None) -> FactorTable:
    """Load and check a factor table (``None``/empty: the packaged one).

    Cached by path and file identity (size, mtime): every calculated batch asks for the table,
    and only a changed file is read, hashed and checked again."""
    source = Path(path) if path else packaged_path()
    try:
        st = source.stat()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the emission factor table ({exc.strerror})") from None
    key = (str(source), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _cache:
            return _cache[key]
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the emission factor table ({exc.strerror})") from None
    table = _parse(source)
    loaded = FactorTable(source.name if path else f"lakeline:{PACKAGED_NAME}",
                         hashlib.sha256(data).hexdigest(), table)
    with _lock:
        _cache[key] = loaded
    return loaded


def _parse(source: Path) -> pa.Table:

    con = duckdb_connection(1)
    try:
        try:
            con.execute(
                "CREATE TABLE raw AS SELECT row_number() OVER () + 1 AS line_no, * FROM read_csv(?, "
                "header = true, all_varchar = true, quote = '\"', escape = '\"', strict_mode = true)",
                [str(source)],
            )
        except Exception as exc:  # DuckDB's CSV errors name the line; keep its words
            raise ConfigError(f"{source}: not a readable CSV factor table: {exc}") from None
        present = [r[0] for r in con.execute("SELECT column_name FROM (DESCRIBE raw)").fetchall()]
        missing = [c for c in COLUMNS if c not in present]
        if missing:
            raise ConfigError(f"{source}: missing column(s) {', '.join(repr(c) for c in missing)}; a factor "
                              f"table needs {', '.join(repr(c) for c in COLUMNS)}")
        select = ", ".join(f'trim("{csv}") AS {col}' for csv, col in COLUMNS.items())
        con.execute(f"CREATE TABLE f AS SELECT line_no, {select} FROM raw")
        for col in _NUMERIC:
            bad = con.execute(
                f"SELECT line_no, {col} FROM f WHERE coalesce({col}, '') <> '' "
                f"AND TRY_CAST({col} AS DOUBLE) IS NULL ORDER BY line_no LIMIT 1"
            ).fetchall()
            if bad:
                raise ConfigError(f"{source}:{bad[0][0]}: {col} {bad[0][1]!r} is not a number")
        bad = con.execute("SELECT line_no FROM f WHERE coalesce(category, '') = '' "
                          "OR coalesce(activity, '') = '' OR coalesce(units, '') = '' "
                          "ORDER BY line_no LIMIT 1").fetchall()
        if bad:
            raise ConfigError(f"{source}:{bad[0][0]}: category, lookup name and Units must not be empty")
        dup = con.execute(
            "SELECT max(line_no), category, activity FROM f GROUP BY category, activity HAVING count(*) > 1 "
            "ORDER BY 1 LIMIT 1").fetchall()
        if dup:
            raise ConfigError(f"{source}:{dup[0][0]}: ({dup[0][1]!r}, {dup[0][2]!r}) appears more than once")
        # An empty factor is zero: EPA leaves biofuels' CO2 blank (biogenic, reported apart),
        # and their AR4/AR5 columns are computed with CO2 = 0.
        numeric = ", ".join(f"coalesce(CAST(nullif({c}, '') AS DOUBLE), 0) AS {c}" for c in _NUMERIC)
        loaded: pa.Table = con.sql(
            f"SELECT TRY_CAST(scope AS INTEGER) AS scope, category, activity, {numeric}, units, source "
            "FROM f ORDER BY line_no").to_arrow_table()
        return loaded
    finally:
        con.close()
