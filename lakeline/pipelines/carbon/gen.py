"""Fake carbon activity CSVs (carbon.md) over a factor table's categories and activities.

Each row picks a factor-table row (so scope, category and activity always match a factor),
an asset of a kind that fits the category (``vehicle…``, ``facility…``, ``trip…``), a
position, a measurement month or timestamp, a source system, and an amount typical of the
factor's unit. One row in five spells its unit another known way (``gal`` for ``gal (US)``,
``kwh`` for ``kwH``, litres for US gallons with the amount converted), which the calculator must
reconcile. ``dirty_rate`` makes that fraction of rows unmatched (an activity no table has) or
unit-mismatched (``kg``), to exercise the rejects. Vectorised with NumPy and written by
pyarrow's CSV writer; the same seed gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from lakeline.pipelines.carbon.calculator import INPUT_COLUMNS
from lakeline.pipelines.carbon.factors import load_factors
from lakeline.pipelines.carbon.units import normalise

_ASSETS = {"mobile-combustion": "vehicle", "grid-region-location-based": "facility",
           "egrid-subregion-residual-mix-market-based": "facility", "transport": "trip"}
_SOURCES = {"mobile-combustion": "company_fleet_management_database",
            "grid-region-location-based": "utility_bills",
            "egrid-subregion-residual-mix-market-based": "utility_bills",
            "transport": "travel_booking_system"}
#: Typical amount range per normalised factor unit.
_RANGES = {"gal(us)": (1, 60), "kwh": (50, 20000), "scf": (100, 5000), "km": (5, 2500), "mile": (3, 1500),
           "passenger-km": (50, 9000), "passenger-mile": (30, 6000), "ton-mile": (10, 50000),
           "tonne-km": (10, 80000), "vehicle-mile": (5, 3000)}
#: Other spellings of a factor unit: (spelling, amount multiplier).
_VARIANTS = {"gal(us)": [("gal", 1.0), ("litres", 3.785411784)], "kwh": [("kwh", 1.0), ("MWh", 0.001)],
             "mile": [("miles", 1.0)], "km": [("kilometres", 1.0)]}


def write(
    count: int, out: Path, *, seed: int = 0, dirty_rate: float = 0.0, factors: str | None = None
) -> int:
    """Write ``count`` activity rows to the CSV ``out``; returns the number written."""
    table = generate(count, seed=seed, dirty_rate=dirty_rate, factors=factors)
    out.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, out, pacsv.WriteOptions(quoting_style="needed"))
    return table.num_rows


def generate(count: int, *, seed: int = 0, dirty_rate: float = 0.0, factors: str | None = None) -> pa.Table:
    """The rows as an Arrow table of strings (the CSV's columns, in order)."""
    rng = np.random.default_rng(seed)
    ft = load_factors(factors).table
    cats = np.array(ft.column("category").to_pylist(), dtype=object)
    acts = np.array(ft.column("activity").to_pylist(), dtype=object)
    units = np.array(ft.column("units").to_pylist(), dtype=object)
    scopes = np.array(ft.column("scope").to_pylist(), dtype=object)
    pick = rng.integers(0, ft.num_rows, count)
    cat, act, unit = cats[pick], acts[pick], units[pick].copy()
    norm = np.array([normalise(u) for u in units], dtype=object)[pick]

    amount = np.empty(count)
    for u, (lo, hi) in _RANGES.items():
        mask = norm == u
        amount[mask] = rng.uniform(lo, hi, int(mask.sum()))
    other = ~np.isin(norm, list(_RANGES))
    amount[other] = rng.uniform(1, 1000, int(other.sum()))
    variant = rng.random(count) < 0.2
    for u, spellings in _VARIANTS.items():
        mask = variant & (norm == u)
        which = rng.integers(0, len(spellings), int(mask.sum()))
        idx = np.flatnonzero(mask)
        for k, (spelling, mult) in enumerate(spellings):
            sel = idx[which == k]
            unit[sel] = spelling
            amount[sel] *= mult
    if dirty_rate > 0:
        dirty = np.flatnonzero(rng.random(count) < dirty_rate)
        half = dirty[: len(dirty) // 2]
        act[half] = "Unknown Activity - Not In Any Table"
        unit[dirty[len(dirty) // 2:]] = "kg"

    kinds = np.array([_ASSETS.get(c, "asset") for c in cats], dtype=object)[pick]
    asset_no = rng.integers(100, 1000, count).astype(str)
    lat = rng.uniform(-60, 70, count)
    lon = rng.uniform(-180, 180, count)
    year = rng.integers(2018, 2024, count)
    month = rng.integers(1, 13, count)
    day = rng.integers(1, 29, count)
    full = rng.random(count) < 0.3
    ts = np.char.add(np.char.add(year.astype(str), "-"), np.char.zfill(month.astype(str), 2))
    stamp = np.char.add(np.char.add(np.char.add(ts, "-"), np.char.zfill(day.astype(str), 2)), "T08:00:00Z")
    ids = np.char.add(f"carbon-data-lake-{seed:04d}-", np.char.zfill(np.arange(count).astype(str), 9))
    geo = np.char.add(np.char.add(np.char.add("[", np.round(lat, 7).astype(str)), ","),
                      np.char.add(np.round(lon, 7).astype(str), "]"))
    columns = {
        "activity_event_id": ids,
        "asset_id": np.char.add(kinds.astype(str), asset_no),
        "geo": geo,
        "origin_measurement_timestamp": np.where(full, stamp, ts),
        "scope": scopes[pick].astype(str),
        "category": cat.astype(str),
        "activity": act.astype(str),
        "source": np.array([_SOURCES.get(c, "manual_entry") for c in cats], dtype=object)[pick].astype(str),
        "raw_data": np.round(amount, 3).astype(str),
        "units": unit.astype(str),
    }
    assert tuple(columns) == INPUT_COLUMNS
    return pa.table({k: pa.array(v.tolist(), type=pa.string()) for k, v in columns.items()})
