"""Units of activity amounts: normalisation, aliases and conversions.

A unit text is normalised (lower case, inner spaces collapsed, spaces around ``-``/``(``/``)``
dropped) and looked up in :data:`UNITS`, which maps every known spelling to a canonical unit,
its dimension and its size in the dimension's base unit. Two units are reconcilable when they
share a dimension; the amount is then multiplied by ``size(record unit) / size(factor unit)``.
``gal`` and ``gal (US)`` are the same unit; litres convert to US gallons, km to miles,
tonne-km to ton-miles, and so on. The table is data (an Arrow table), joined in DuckDB — no
per-record Python.
"""

from __future__ import annotations

import re

import pyarrow as pa

_GAL_L = 3.785411784  # litres per US gallon (exact)
_MILE_KM = 1.609344  # km per international mile (exact)
_SHORT_TON_T = 0.90718474  # tonnes per short ton (exact)

# canonical → (dimension, size in base unit, spellings after normalisation)
_CANONICAL: dict[str, tuple[str, float, tuple[str, ...]]] = {
    "kwh": ("energy", 1.0, ("kwh", "kw-h", "kw h", "kilowatt-hour", "kilowatt-hours", "kilowatt hour")),
    "mwh": ("energy", 1000.0, ("mwh", "megawatt-hour", "megawatt-hours")),
    "gwh": ("energy", 1_000_000.0, ("gwh",)),
    "wh": ("energy", 0.001, ("wh", "watt-hour", "watt-hours")),
    "gal (us)": ("liquid_volume", 1.0, ("gal(us)", "gal", "gals", "gallon", "gallons", "us gal",
                                        "usgal", "gallon(us)", "gallons(us)", "us gallon", "us gallons")),
    "l": ("liquid_volume", 1 / _GAL_L, ("l", "liter", "liters", "litre", "litres", "ltr")),
    "m3": ("liquid_volume", 1000 / _GAL_L,
           ("m3", "cubic meter", "cubic metre", "cubic meters", "cubic metres")),
    "scf": ("gas_volume", 1.0, ("scf", "standard cubic foot", "standard cubic feet", "ft3", "cf")),
    "ccf": ("gas_volume", 100.0, ("ccf",)),
    "mcf": ("gas_volume", 1000.0, ("mcf",)),
    "mile": ("distance", 1.0, ("mile", "miles", "mi")),
    "km": ("distance", 1 / _MILE_KM, ("km", "kms", "kilometer", "kilometers", "kilometre", "kilometres")),
    "passenger-mile": ("passenger_distance", 1.0, ("passenger-mile", "passenger-miles", "pmi",
                                                   "passenger mile", "passenger miles")),
    "passenger-km": ("passenger_distance", 1 / _MILE_KM, ("passenger-km", "pkm", "passenger km",
                                                          "passenger-kilometer", "passenger-kilometre")),
    "vehicle-mile": ("vehicle_distance", 1.0, ("vehicle-mile", "vehicle-miles", "vmi", "vehicle mile")),
    "vehicle-km": ("vehicle_distance", 1 / _MILE_KM, ("vehicle-km", "vkm", "vehicle km")),
    "ton-mile": ("freight", 1.0, ("ton-mile", "ton-miles", "short ton-mile", "short ton-miles")),
    "tonne-km": ("freight", 1 / (_SHORT_TON_T * _MILE_KM), ("tonne-km", "tonne-kms", "tkm", "t-km",
                                                             "metric ton-km", "tonne km")),
}

_SPACES = re.compile(r"\s+")
_AROUND = re.compile(r"\s*([-()/])\s*")


def normalise(text: str) -> str:
    """The comparable form of a unit text: ``" Gal (US) "`` → ``"gal(us)"``.

    The same rewrite is :data:`NORMALISE_SQL` for DuckDB.
    """
    return _AROUND.sub(r"\1", _SPACES.sub(" ", text.strip().lower()))


#: :func:`normalise` as a DuckDB expression over ``{u}`` (a VARCHAR expression).
NORMALISE_SQL = (
    "regexp_replace(regexp_replace(lower(trim({u})), '\\s+', ' ', 'g'), '\\s*([-()/])\\s*', '\\1', 'g')"
)


def units_table() -> pa.Table:
    """Every known spelling (normalised) with its canonical unit, dimension and size."""
    spelling: list[str] = []
    canonical: list[str] = []
    dimension: list[str] = []
    size: list[float] = []
    for unit, (dim, factor, names) in _CANONICAL.items():
        for name in {normalise(unit), *(normalise(n) for n in names)}:
            spelling.append(name)
            canonical.append(unit)
            dimension.append(dim)
            size.append(factor)
    return pa.table({"spelling": spelling, "canonical": canonical, "dimension": dimension, "size": size})


def conversion(from_unit: str, to_unit: str) -> float | None:
    """Multiplier taking an amount in ``from_unit`` to ``to_unit``; None if not reconcilable."""
    lookup = {normalise(n): (dim, size) for unit, (dim, size, names) in _CANONICAL.items()
              for n in (unit, *names)}
    a, b = lookup.get(normalise(from_unit)), lookup.get(normalise(to_unit))
    if a is None or b is None or a[0] != b[0]:
        return None
    return a[1] / b[1]
