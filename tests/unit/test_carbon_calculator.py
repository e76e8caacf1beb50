"""The CO2e calculator of carbon.md: hand-computed values for every category, units, rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakeline.duck import duckdb_connection
from lakeline.errors import ConfigError
from lakeline.pipelines.carbon.calculator import INPUT_COLUMNS, calculate, register
from lakeline.pipelines.carbon.factors import load_factors, packaged_path
from lakeline.pipelines.carbon.units import conversion, normalise

AT = datetime(2026, 11, 23, tzinfo=UTC)


def _run(rows: list[tuple[str, ...]], factors_path: str | None = None):  # type: ignore[no-untyped-def]
    con = duckdb_connection(1)
    con.execute(f"CREATE TABLE b ({', '.join(f'{c} VARCHAR' for c in INPUT_COLUMNS)}, _line_no BIGINT)")
    for i, r in enumerate(rows):
        con.execute(f"INSERT INTO b VALUES ({', '.join('?' for _ in INPUT_COLUMNS)}, ?)", [*r, i + 2])
    f = load_factors(factors_path)
    register(con, f)
    return calculate(con, "b", f, root_id="root", parent_id="batch", source_key="carbon/a.csv", calculated_at=AT), f


def row(eid: str, scope: str, category: str, activity: str, raw: str, units: str) -> tuple[str, ...]:
    return (eid, "asset1", "[22.49,91.50]", "2019-10", scope, category, activity, "db", raw, units)


# (row, co2, ch4, n2o, co2e ar4, co2e ar5) in tonnes, computed by hand from the factor table:
# gas = raw x factor / 1000; ar4 = co2 + 25 ch4 + 298 n2o; ar5 = co2 + 28 ch4 + 265 n2o
CASES = [
    (row("m1", "1", "mobile-combustion", "Motor Gasoline - Gasoline Passenger Cars", "9", "gal"),
     0.07902, 3.50325e-06, 7.29e-07, 0.07932482325, 0.079311276),
    (row("m2", "1", "mobile-combustion", "Compressed Natural Gas - CNG Light-duty Vehicles", "1000", "scf"),
     0.40723948, 0.089312914, 0.006059221, 4.445710188, 4.513694637),
    (row("g1", "2", "grid-region-location-based", "AKGD", "1000", "kwh"),
     0.471570504, 3.72e-05, 4.99e-06, 0.473987524, 0.473934454),
    (row("g2", "2", "egrid-subregion-residual-mix-market-based", "CAMX", "500", "kWh"),
     0.1200704365, 0.0, 0.0, 0.1200704365, 0.1200704365),
    (row("t1", "3", "transport", "Average Car - Battery Electric Vehicle", "100", "miles"),
     0.009612, 0.000024, 0.000052, 0.025708, 0.024064),
    (row("t2", "3", "transport", "HGV (all diesel) - km", "250", "km"),
     0.2134025, 0.0000425, 0.0031925, 1.16583, 1.060605),
    # converted units: 160.9344 km = 100 miles; 37.85411784 litres = 10 US gallons
    (row("t3", "3", "transport", "Average Car - Battery Electric Vehicle", "160.9344", "km"),
     0.009612, 0.000024, 0.000052, 0.025708, 0.024064),
    (row("m3", "1", "mobile-combustion", "Motor Gasoline - Gasoline Passenger Cars", "37.85411784", "litres"),
     0.0878, 3.8925e-06, 8.1e-07, 0.0881386925, 0.08812364),
]


@pytest.mark.parametrize(("r", "co2", "ch4", "n2o", "ar4", "ar5"), CASES, ids=[c[0][0] for c in CASES])
def test_exact_co2e_per_category(r, co2, ch4, n2o, ar4, ar5) -> None:  # type: ignore[no-untyped-def]
    result, factors = _run([r])
    assert result.rejects.num_rows == 0
    [out] = result.calculated.to_pylist()
    calc = out["emissions_output"]["calculated_emissions"]
    for gas, want in (("co2", co2), ("ch4", ch4), ("n2o", n2o)):
        assert calc[gas] == {"amount": pytest.approx(want, rel=1e-12, abs=1e-18), "unit": "tonnes"}
    assert calc["co2e"]["ar4"] == {"amount": pytest.approx(ar4, rel=1e-12), "unit": "tonnes"}
    assert calc["co2e"]["ar5"] == {"amount": pytest.approx(ar5, rel=1e-12), "unit": "tonnes"}
    assert out["emissions_output"]["emissions_factor"]["ar4"]["unit"] == "kgCO2e/unit"
    assert out["_factors"] == {"name": "lakeline:ghg_emission_factors.csv", "sha256": factors.sha256}
    assert out["_source"] == {"key": "carbon/a.csv", "line_no": 2}
    assert out["_lineage"] == {"root_id": "root", "parent_id": "batch"}
    assert (out["activity_event_id"], out["geo"], out["scope"], out["raw_data"]) == (
        r[0], "[22.49,91.50]", int(r[4]), float(r[8]))


def test_the_emission_factor_amounts_come_from_the_table() -> None:
    result, _ = _run([CASES[0][0]])
    [out] = result.calculated.to_pylist()
    assert out["emissions_output"]["emissions_factor"] == {
        "ar4": {"amount": 8.81386925, "unit": "kgCO2e/unit"}, "ar5": {"amount": 8.812364, "unit": "kgCO2e/unit"}}


def test_unmatched_mismatched_and_bad_values_are_rejected_never_dropped() -> None:
    rows = [
        row("ok", "1", "mobile-combustion", "Motor Gasoline - Gasoline Passenger Cars", "9", "gal (US)"),
        row("nf", "1", "mobile-combustion", "Rocket Fuel", "9", "gal"),
        row("um", "1", "mobile-combustion", "Motor Gasoline - Gasoline Passenger Cars", "9", "kg"),
        row("uk", "2", "grid-region-location-based", "AKGD", "9", "furlongs"),
        row("te", "1", "mobile-combustion", "Motor Gasoline - Gasoline Passenger Cars", "nine", "gal"),
        row("sc", "x", "mobile-combustion", "Motor Gasoline - Gasoline Passenger Cars", "9", "gal"),
    ]
    result, _ = _run(rows)
    assert result.calculated.column("activity_event_id").to_pylist() == ["ok"]
    rej = result.rejects.to_pylist()
    assert [(r["activity_event_id"], r["line_no"], r["reason_code"]) for r in rej] == [
        ("nf", 3, "FACTOR_NOT_FOUND"), ("um", 4, "UNIT_MISMATCH"), ("uk", 5, "UNIT_MISMATCH"),
        ("te", 6, "TYPE_ERROR"), ("sc", 7, "TYPE_ERROR")]
    assert rej[0]["message"] == 'no emission factor for category "mobile-combustion", activity "Rocket Fuel"'
    assert rej[1]["message"] == "units \"kg\" cannot be converted to the factor's units \"gal (US)\""
    assert rej[3]["message"] == 'raw_data "nine" is not a number'
    assert rej[0]["pipeline"] == "carbon" and rej[0]["key"] == "carbon/a.csv"
    assert '"activity":"Rocket Fuel"' in rej[0]["raw"]


def test_matching_ignores_case_and_surrounding_spaces() -> None:
    result, _ = _run([row("a", "1", " Mobile-Combustion ", "motor gasoline - gasoline passenger cars ", "9", " GAL ")])
    assert result.calculated.num_rows == 1


def test_units_normalise_alias_and_convert() -> None:
    assert normalise(" Gal  (US) ") == "gal(us)" and normalise("kwH") == "kwh"
    assert conversion("gal", "gal (US)") == 1.0
    assert conversion("l", "gal (US)") == pytest.approx(1 / 3.785411784, rel=1e-15)
    assert conversion("km", "mile") == pytest.approx(1 / 1.609344, rel=1e-15)
    assert conversion("MWh", "kwH") == 1000.0
    assert conversion("tonne-km", "ton-mile") == pytest.approx(1 / (0.90718474 * 1.609344), rel=1e-15)
    assert conversion("kg", "gal") is None and conversion("scf", "gal") is None


def test_packaged_factor_table_loads_with_bom_and_quoted_commas() -> None:
    f = load_factors()
    assert f.rows == 236 and packaged_path().read_bytes().startswith(b"\xef\xbb\xbf")
    assert set(f.table.column("category").to_pylist()) == {
        "mobile-combustion", "grid-region-location-based", "egrid-subregion-residual-mix-market-based", "transport"}
    light = [r for r in f.table.to_pylist() if r["activity"].startswith("Motor Gasoline - Gasoline Light-duty")]
    assert light[0]["activity"] == "Motor Gasoline - Gasoline Light-duty Trucks (Vans, Pickup Trucks, SUVs)"
    biodiesel = [r for r in f.table.to_pylist() if r["activity"].startswith("Biodiesel (100%) - Biodiesel Passenger")]
    assert biodiesel[0]["co2_kg"] == 0.0  # an empty factor is zero (biogenic CO2)


def test_a_users_own_factor_table(tmp_path: Path) -> None:
    own = tmp_path / "own.csv"
    header = packaged_path().read_text("utf-8-sig").splitlines()[0]
    own.write_text(header + "\n1,mobile-combustion,Tractor,2,0,0,2,2,gal (US),mine\n")
    result, f = _run([row("a", "1", "mobile-combustion", "Tractor", "500", "gal")], str(own))
    [out] = result.calculated.to_pylist()
    assert out["emissions_output"]["calculated_emissions"]["co2e"]["ar4"]["amount"] == 1.0
    assert out["_factors"] == {"name": "own.csv", "sha256": f.sha256} and f.rows == 1


@pytest.mark.parametrize(("body", "message"), [
    ("scope,category\n1,x\n", "missing column(s) 'lookup name'"),
    ("{h}\n1,c,a,1,0,0,1,1,kWh,s\n1,c,b,lots,0,0,1,1,kWh,s\n", ":3: co2_kg 'lots' is not a number"),
    ("{h}\n1,c,a,1,0,0,1,1,kWh,s\n1,c,a,2,0,0,2,2,kWh,s\n", ":3: ('c', 'a') appears more than once"),
    ("{h}\n1,c,,1,0,0,1,1,kWh,s\n", ":2: category, lookup name and Units must not be empty"),
])
def test_bad_factor_tables_name_file_line_and_reason(tmp_path: Path, body: str, message: str) -> None:
    header = packaged_path().read_text("utf-8-sig").splitlines()[0]
    bad = tmp_path / "bad.csv"
    bad.write_text(body.format(h=header))
    with pytest.raises(ConfigError) as err:
        load_factors(bad)
    assert str(bad) in str(err.value) and message in str(err.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_factors(tmp_path / "missing.csv")
