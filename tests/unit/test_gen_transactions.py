"""The transactions fake-data generator: header, value domains, determinism, planted defects."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lakeline.errors import UsageError
from lakeline.pipelines.transactions import gen as gen

N = 30_000
TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
AMOUNT_RE = re.compile(r"\d+\.\d{2}")


def read(path):
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_clean_rows_have_the_documented_domains(tmp_path):
    path = tmp_path / "t.csv"
    assert gen.write(N, path, seed=3) == N
    header, rows = read(path)
    assert tuple(header) == gen.HEADER
    assert len(rows) == N
    assert [r[0] for r in rows[:3]] == ["TXN-00000001", "TXN-00000002", "TXN-00000003"]
    assert len({r[0] for r in rows}) == N
    months = Counter()
    for txn, cust, amount, currency, ts in rows:
        assert re.fullmatch(r"TXN-\d{8}", txn) and re.fullmatch(r"CUST-\d{6}", cust)
        assert 1 <= int(cust[5:]) <= gen.CUSTOMERS
        assert AMOUNT_RE.fullmatch(amount) and Decimal("0.01") <= Decimal(amount) <= Decimal("99999.99")
        assert currency in gen.CURRENCIES
        assert TS_RE.fullmatch(ts)
        t = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert gen.DEFAULT_START <= t < datetime(2024, 3, 31, tzinfo=UTC)
        months[t.month] += 1
    assert sorted(months) == [1, 2, 3]  # spans several calendar months
    currencies = Counter(r[3] for r in rows)
    assert currencies.most_common(1)[0][0] == "USD" and set(currencies) == set(gen.CURRENCIES)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    gen.write(5000, a, seed=1, dirty_rate=0.1)
    gen.write(5000, b, seed=1, dirty_rate=0.1)
    gen.write(5000, c, seed=2, dirty_rate=0.1)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert gen.generate(5000, seed=1, dirty_rate=0.1).to_pylist() == [
        dict(zip(gen.HEADER, r, strict=True)) for r in read(a)[1]]


def test_the_dirty_plan_is_global_whatever_the_batch_size(tmp_path, monkeypatch):
    whole, split = tmp_path / "whole.csv", tmp_path / "split.csv"
    gen.write(2500, whole, seed=5, dirty_rate=0.2)
    monkeypatch.setattr(gen, "BATCH", 1000)
    gen.write(2500, split, seed=5, dirty_rate=0.2)
    (_, a), (_, b) = read(whole), read(split)

    def bad_amounts(rows):
        return [n for n, r in enumerate(rows) if r[2] and not AMOUNT_RE.fullmatch(r[2])]

    assert bad_amounts(a) == bad_amounts(b) and len(bad_amounts(a)) == 100
    assert [r[0] for r in a] == [r[0] for r in b]  # ids (and duplicated ids) follow the plan


@pytest.mark.parametrize(("count", "rate", "seed"), [(N, 0.05, 0), (N, 0.05, 9), (1234, 0.33, 4), (10, 1.0, 1)])
def test_dirty_rows_carry_exactly_one_planted_defect(tmp_path, count, rate, seed):
    path = tmp_path / "d.csv"
    gen.write(count, path, seed=seed, dirty_rate=rate)
    _, rows = read(path)
    found = Counter()
    first_seen: set[str] = set()
    for txn, cust, amount, currency, ts in rows:
        defects = []
        if "" in (txn, cust, amount, currency, ts):
            defects.append("NULL_VALUE_ERROR")
        if amount and not AMOUNT_RE.fullmatch(amount):
            defects.append("TYPE_ERROR")
        if currency and currency not in gen.CURRENCIES:
            defects.append("CURRENCY_ERROR")
        if ts and not TS_RE.fullmatch(ts) or ts.startswith("2024-13"):
            defects.append("TIMESTAMP_ERROR")
        if txn and txn in first_seen:
            defects.append("DUPLICATE_FAILURE")
        first_seen.add(txn)
        assert len(defects) <= 1, (txn, defects)
        found.update(defects)
    expected = gen.defect_counts(count, rate)
    assert sum(expected.values()) == min(int(count * rate), count - 1)
    assert {k: v for k, v in found.items()} == {k: v for k, v in expected.items() if v}
    assert rows[0][0] == "TXN-00000001" and "" not in rows[0]  # the first row is always clean


def test_defect_counts_cycle_through_the_defects():
    assert gen.defect_counts(1000, 0.007) == {
        "NULL_VALUE_ERROR": 2, "TYPE_ERROR": 2, "CURRENCY_ERROR": 1, "TIMESTAMP_ERROR": 1,
        "DUPLICATE_FAILURE": 1}
    assert sum(gen.defect_counts(0, 0.5).values()) == 0


def test_zero_rows_is_a_header_only_file(tmp_path):
    path = tmp_path / "z.csv"
    assert gen.write(0, path) == 0
    assert path.read_text() == ",".join(gen.HEADER) + "\n"


def test_window_and_bad_arguments(tmp_path):
    path = tmp_path / "w.csv"
    gen.write(200, path, start=datetime(2025, 12, 31), days=2)
    assert {r[4][:7] for r in read(path)[1]} == {"2025-12", "2026-01"}
    for kwargs in ({"count": -1}, {"dirty_rate": 1.5}, {"seed": -1}, {"days": 0}):
        args = {"count": 10, **kwargs}
        with pytest.raises(UsageError):
            gen.write(args.pop("count"), path, **args)
