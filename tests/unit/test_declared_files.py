"""Pipeline files and the registry refuse bad input with the file, the key or line, and what is
allowed; ``pipeline new`` infers a file from a sample."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeline.config import load_settings
from lakeline.errors import ConfigError, UsageError
from lakeline.pipelines.base import Pipeline
from lakeline.pipelines.declared import load_file
from lakeline.pipelines.infer import new_pipeline
from lakeline.pipelines.registry import register_pipeline, registry, unregister_pipeline

GOOD = """
format = "jsonl"
[tables.t]
fields = [{ name = "id", type = "int64" }]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "message"), [
    ('format = "jsonl"\n[tables.t\n', "not valid TOML: Expected ']' at the end of a table declaration (at line 2"),
    ('format = "xml"\n[tables.t]\nfields = [{ name = "a" }]\n',
     "format: 'xml' is not allowed; use one of jsonl, json, csv, parquet"),
    ('colour = "red"\n' + GOOD, "colour: unknown key; allowed: description, format, time_field,"),
    ('format = "jsonl"\n', "tables: declare at least one table"),
    (GOOD.replace('"int64"', '"integer"'),
     "tables.t.fields[0].type: unknown type 'integer'; types: string, int64, float64, bool, date, timestamp, "
     "decimal(p,s)"),
    (GOOD.replace('"int64"', '"decimal(40,2)"'), "tables.t.fields[0].type: decimal(40,2) needs 1 <= precision <= 38"),
    (GOOD.replace('name = "id"', 'name = "Order ID"'), "tables.t.fields[0].name: 'Order ID' is not a valid name"),
    (GOOD.replace('name = "id"', 'name = "dt"'), "tables.t.fields[0].name: 'dt' is reserved"),
    (GOOD.replace('type = "int64"', 'type = "int64", size = 3'),
     "tables.t.fields[0].size: unknown key; allowed: name, type, required, column"),
    (GOOD + "[tables.u]\nfields = [{ name = \"id\" }]\n", "route_field: 2 tables need route_field"),
    ('time_field = "at"\n' + GOOD, "time_field: 'at' is not a field of tables.t; fields: id"),
    ('time_field = "id"\n' + GOOD, "time_field: 'id' of tables.t is int64; the time field must be a timestamp or a date"),
    (GOOD.replace("[tables.t]", '[tables.t]\nkey = ["nope"]'), "tables.t.key: 'nope' is not a field of the table"),
    ('[csv]\ndelimiter = ";"\n' + GOOD, 'csv: [csv] options apply to format = "csv", not \'jsonl\''),
    (GOOD.replace('"jsonl"', '"csv"') + '[csv]\ndelimiter = ";;"\n', "csv.delimiter must be one character"),
    (GOOD.replace('"jsonl"', '"csv"') + '[csv]\nencoding = "utf-16"\n',
     "csv.encoding 'utf-16' does not write line ends as one ASCII byte"),
    (GOOD.replace("[tables.t]", '[tables.t]\nrules = [{ kind = "between", column = "id" }]'),
     "tables.t.rules: ruleset 't1.t': rules[0] (between): needs min and/or max"),
    (GOOD.replace("[tables.t]", "[tables.T]"), "tables.T: 'T' is not a valid name"),
])
def test_a_bad_pipeline_file_names_the_file_the_key_and_what_is_allowed(tmp_path: Path, text: str,
                                                                      message: str) -> None:
    path = write(tmp_path, "t1", text)
    with pytest.raises(ConfigError) as exc:
        load_file(path)
    assert str(exc.value).startswith(f"{path}: " + message), str(exc.value)


def test_a_file_that_cannot_name_a_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pipeline name: 'My-Feed' is not a valid name"):
        load_file(write(tmp_path, "My-Feed", GOOD))


def test_names_that_collide_are_refused_by_the_registry(tmp_path: Path) -> None:
    path = write(tmp_path, "shipments", GOOD)
    with pytest.raises(ConfigError) as exc:
        registry(load_settings(tmp_path))
    assert str(exc.value) == (f"{path}: pipeline 'shipments' already exists "
                              "(lakeline/pipelines/shipments/shipments.toml); rename the file or the pipeline")
    path.unlink()
    clash = write(tmp_path, "feed", GOOD.replace("[tables.t]", "[tables.shipments]"))
    with pytest.raises(ConfigError) as exc:
        registry(load_settings(tmp_path))
    assert str(exc.value) == (f"{clash}: table silver.shipments is already written by pipeline 'shipments'; "
                              "choose another table name")


def test_settings_for_no_pipeline_and_bad_overrides_name_their_origin(tmp_path: Path) -> None:
    (tmp_path / "lakeline.toml").write_text("[pipelines.nope]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"lakeline.toml: \[pipelines.nope\] names no pipeline; pipelines: carbon"):
        registry(load_settings(tmp_path))
    (tmp_path / "lakeline.toml").write_text('[pipelines.shipments]\ntable_format = "delta"\n')
    with pytest.raises(ConfigError) as exc:
        registry(load_settings(tmp_path))
    assert str(exc.value) == (f"{tmp_path / 'lakeline.toml'}: pipelines.shipments.table_format must be one of "
                              "parquet, iceberg, got 'delta'")
    env = {"LAKELINE__PIPELINES__RETAIL__ON_VIOLATION": "ignore"}
    (tmp_path / "lakeline.toml").write_text("")
    with pytest.raises(ConfigError) as exc:
        registry(load_settings(tmp_path, environ=env))
    assert str(exc.value) == ("environment LAKELINE__PIPELINES__RETAIL__ON_VIOLATION: pipelines.retail.on_violation "
                              "must be fail or quarantine, got 'ignore'")


def test_a_pipeline_file_overrides_nothing_and_lakeline_toml_overrides_the_file(tmp_path: Path) -> None:
    write(tmp_path, "feed", GOOD)
    (tmp_path / "lakeline.toml").write_text('[pipelines.feed]\ntable_format = "iceberg"\n')
    s = load_settings(tmp_path)
    spec = registry(s).stream("feed")
    assert (spec.table_format, spec.format, spec.tables[0].name) == ("iceberg", "jsonl", "t")


def test_register_pipeline_adds_a_python_pipeline_and_refuses_a_second_of_that_name(tmp_path: Path) -> None:
    class Hello(Pipeline):
        name = "hello"

    first = register_pipeline(Hello())
    try:
        assert registry(load_settings(tmp_path)).get("hello") is first
        assert first.origin.startswith("registered (")
        with pytest.raises(UsageError, match="a pipeline named 'hello' is already registered"):
            register_pipeline(Hello())
    finally:
        unregister_pipeline("hello")
    with pytest.raises(UsageError, match="unknown pipeline 'hello'"):
        registry(load_settings(tmp_path)).get("hello")


# ---- pipeline new -------------------------------------------------------------------------------
def test_new_pipeline_from_a_csv_sample(tmp_path: Path) -> None:
    sample = tmp_path / "orders.csv"
    sample.write_text('Order ID;placed at;amount;Note\n1;2026-01-05T10:00:00Z;12,50;"a; b"\n'
                      "2;2026-01-06T10:00:00Z;3,10;c\n")
    text = new_pipeline("orders", sample, keys=("Order ID",))
    lines = text.splitlines()
    assert 'format = "csv"' in text and 'time_field = "placed_at"' in text
    assert 'delimiter = ";"' in text and 'decimal = ","' in text and "header = true" in text
    assert any(x.startswith('  { name = "order_id", type = "int64", required = true, column = "Order ID" },')
               for x in lines)
    assert any(x.startswith('  { name = "amount", type = "float64" },') for x in lines)
    assert any(x.startswith('  { name = "note", type = "string", column = "Note" },') and "e.g." in x for x in lines)
    assert 'key = ["order_id"]' in text
    assert all("#" in x for x in lines if " = " in x and not x.startswith(("  {", "fields", "[", "description")))
    path = write(tmp_path, "orders", text)
    spec = load_file(path).stream(load_settings(tmp_path))
    assert (spec.csv.decimal, spec.time_field, spec.tables[0].key) == (",", "placed_at", ("order_id",))


def test_new_pipeline_from_json_lines_and_parquet_samples(tmp_path: Path) -> None:
    sample = tmp_path / "events.jsonl"
    sample.write_text("\n".join(json.dumps(r) for r in [
        {"id": 1, "at": "2026-01-05T10:00:00Z", "tags": ["a"], "ok": True, "day": "2026-01-05"},
        {"id": 2, "at": "2026-01-05T11:00:00Z", "tags": [], "ok": False, "day": "2026-01-06"}]) + "\n")
    text = new_pipeline("events", sample, time_field="day")
    assert 'format = "jsonl"' in text and 'time_field = "day"' in text
    assert "# tags (VARCHAR[]): nested values have no flat silver type" in text
    assert '{ name = "ok", type = "bool" },' in text and '{ name = "day", type = "date", required = true },' in text
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"n": pa.array([1, 2], pa.int32()), "v": pa.array([1.5, None])}), parquet)
    text = new_pipeline("p", parquet)
    assert 'format = "parquet"' in text and "# time_field =" in text
    assert '{ name = "v", type = "float64" },' in text and "sample: 1 empty of 2" in text


def test_new_pipeline_refuses_what_it_cannot_read_or_find(tmp_path: Path) -> None:
    bad = tmp_path / "x.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(UsageError, match=r"--sample .*x.parquet: cannot be read as parquet"):
        new_pipeline("x", bad)
    with pytest.raises(UsageError, match="cannot tell the format of x.bin from its name; pass --format"):
        new_pipeline("x", tmp_path / "x.bin")
    sample = tmp_path / "a.csv"
    sample.write_text("a,b\n1,x\n")
    with pytest.raises(UsageError, match=r"--time-field 'b' holds string values in the sample \(e.g. 'x'\)"):
        new_pipeline("a", sample, time_field="b")
    with pytest.raises(UsageError, match=r"--key 'c' is not a column of the sample; columns: a, b"):
        new_pipeline("a", sample, keys=("c",))
