"""The shipments fake-data generator: formats, value domains and determinism."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from lakeline.errors import UsageError
from lakeline.pipelines.shipments import gen as gen

N = 20_000  # a few chunks, with a partial last one

ID_RE = {
    "shipment_id": re.compile(r"shp_[0-9a-f]{12}"),
    "invoice_id": re.compile(r"inv_[0-9a-f]{10}"),
}
TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _lines(path: Path) -> list[dict[str, object]]:
    text = path.read_text(encoding="ascii")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.split("\n")[:-1]]


def _parse_time(value: object) -> datetime:
    assert isinstance(value, str) and TIME_RE.fullmatch(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _check_domains(record_type: str, rows: list[dict[str, object]], *, end: datetime, days: int) -> None:
    start = end - timedelta(days=days)
    for row in rows:
        assert list(row) == list(gen.FIELDS[record_type])
        assert row["record_type"] == record_type
        assert start <= _parse_time(row["event_time"]) < end
        for name, pattern in ID_RE.items():
            if name in row:
                assert isinstance(row[name], str) and pattern.fullmatch(row[name]), row[name]
        if record_type == "shipments":
            assert row["origin"] in {"SZX", "HKG", "LAX", "ORD"}
            assert row["destination"] in {"SEA", "JFK", "SFO", "DFW"}
            assert row["carrier"] in {"UPS", "DHL", "FEDEX"}
            weight = row["weight_kg"]
            assert isinstance(weight, float) and 0 <= weight <= 30 and round(weight, 2) == weight
        elif record_type == "tracking_events":
            assert row["status"] in {"CREATED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED"}
            assert row["city"] in set(gen.CITIES)
        else:
            assert row["sku"] in {"SKU-001", "SKU-002", "SKU-003"}
            q, p, total = row["quantity"], row["unit_price"], row["line_total"]
            assert type(q) is int and 1 <= q <= 6
            assert isinstance(p, float) and 3 <= p <= 53 and round(p, 2) == p
            assert isinstance(total, float) and abs(total - round(q * p, 2)) < 1e-9


@pytest.mark.parametrize("record_type", gen.RECORD_TYPES)
def test_jsonl_lines_parse_with_exact_keys_and_domains(tmp_path: Path, record_type: str) -> None:
    out = tmp_path / "out.jsonl"
    assert gen.write(record_type, N, out, seed=7) == N
    rows = _lines(out)
    assert len(rows) == N
    _check_domains(record_type, rows, end=gen.DEFAULT_END, days=7)
    # compact: no whitespace between tokens (and numbers written as Python writes them)
    for line, row in zip(out.read_text().split("\n"), rows, strict=False):
        assert line == json.dumps(row, separators=(",", ":"))


@pytest.mark.parametrize("record_type", gen.RECORD_TYPES)
def test_enum_values_all_occur(tmp_path: Path, record_type: str) -> None:
    table = gen.generate(record_type, N, seed=1)
    enums = {
        "origin": gen.ORIGINS,
        "destination": gen.DESTINATIONS,
        "carrier": gen.CARRIERS,
        "status": gen.STATUSES,
        "city": gen.CITIES,
        "sku": gen.SKUS,
    }
    for name, values in enums.items():
        if name in table.column_names:
            assert set(table.column(name).to_pylist()) == set(values)
    if record_type == "invoice_lines":
        assert set(table.column("quantity").to_pylist()) == set(range(1, 7))


@pytest.mark.parametrize("record_type", gen.RECORD_TYPES)
def test_generate_table_matches_written_lines(tmp_path: Path, record_type: str) -> None:
    table = gen.generate(record_type, N, seed=3)
    assert table.schema == gen.schema(record_type)
    assert table.column_names == list(gen.FIELDS[record_type])
    assert table.num_rows == N
    for name in table.column_names:
        expected = {"weight_kg": pa.float64(), "unit_price": pa.float64(), "line_total": pa.float64()}
        expected["quantity"] = pa.int64()
        assert table.schema.field(name).type == expected.get(name, pa.string())
    out = tmp_path / "out.jsonl"
    gen.write(record_type, N, out, seed=3)
    assert _lines(out) == table.to_pylist()


def test_custom_window(tmp_path: Path) -> None:
    end = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    out = tmp_path / "out.jsonl"
    gen.write("tracking_events", 5000, out, days=2, end=end)
    rows = _lines(out)
    _check_domains("tracking_events", rows, end=end, days=2)
    times = [_parse_time(r["event_time"]) for r in rows]
    assert max(times) - min(times) > timedelta(days=1, hours=20)  # spread over the window
    # a naive end means UTC
    naive = tmp_path / "naive.jsonl"
    gen.write("tracking_events", 5000, naive, days=2, end=end.replace(tzinfo=None))
    assert naive.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("record_type", gen.RECORD_TYPES)
def test_same_seed_same_bytes_any_batch_size(tmp_path: Path, record_type: str) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    gen.write(record_type, N, a, seed=42)
    gen.write(record_type, N, b, seed=42, batch_size=1000)
    gen.write(record_type, N, c, seed=43)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    # a shorter run is a prefix of a longer one
    short = tmp_path / "short.jsonl"
    gen.write(record_type, 100, short, seed=42)
    assert a.read_bytes().startswith(short.read_bytes())
    assert gen.generate(record_type, 500, seed=42).equals(gen.generate(record_type, 500, seed=42))


def test_record_types_differ_for_same_seed() -> None:
    ship = gen.generate("shipments", 100).column("shipment_id").to_pylist()
    track = gen.generate("tracking_events", 100).column("shipment_id").to_pylist()
    assert ship != track


@pytest.mark.parametrize("record_type", gen.RECORD_TYPES)
def test_json_array_format(tmp_path: Path, record_type: str) -> None:
    out = tmp_path / "out.json"
    assert gen.write(record_type, N, out, fmt="json", seed=5, batch_size=9000) == N
    rows = json.loads(out.read_text())
    assert isinstance(rows, list) and len(rows) == N
    assert out.read_bytes().startswith(b"[{") and out.read_bytes().endswith(b"}]")
    jsonl = tmp_path / "out.jsonl"
    gen.write(record_type, N, jsonl, seed=5)
    assert rows == _lines(jsonl)


def test_count_zero(tmp_path: Path) -> None:
    jsonl, arr = tmp_path / "a.jsonl", tmp_path / "a.json"
    assert gen.write("shipments", 0, jsonl) == 0
    assert gen.write("shipments", 0, arr, fmt="json") == 0
    assert jsonl.read_bytes() == b""
    assert arr.read_bytes() == b"[]"
    assert gen.generate("invoice_lines", 0).num_rows == 0


def test_single_record_json(tmp_path: Path) -> None:
    out = tmp_path / "one.json"
    gen.write("invoice_lines", 1, out, fmt="json")
    rows = json.loads(out.read_text())
    assert len(rows) == 1 and rows[0]["record_type"] == "invoice_lines"


def test_progress_reports_records_written_so_far(tmp_path: Path) -> None:
    seen: list[int] = []
    gen.write("shipments", N, tmp_path / "p.jsonl", batch_size=gen.CHUNK_SIZE, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == N and len(seen) == -(-N // gen.CHUNK_SIZE)


def test_usage_errors(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    with pytest.raises(UsageError, match="record type"):
        gen.write("parcels", 10, out)
    with pytest.raises(UsageError, match="record type"):
        gen.generate("parcels", 10)
    with pytest.raises(UsageError, match="count"):
        gen.write("shipments", -1, out)
    with pytest.raises(UsageError, match="count"):
        gen.generate("shipments", -1)
    with pytest.raises(UsageError, match="format"):
        gen.write("shipments", 10, out, fmt="csv")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="days"):
        gen.write("shipments", 10, out, days=0)
    with pytest.raises(UsageError, match="seed"):
        gen.write("shipments", 10, out, seed=-1)
