"""Rules and rulesets: parsing, config errors naming the file, rule index and reason, BUILTIN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lakeline.config import load_settings
from lakeline.dq.rules import Rule, parse_age, parse_rule, parse_ruleset, ruleset_for
from lakeline.errors import ConfigError, NotFoundError
from lakeline.pipelines.carbon.pipeline import CARBON
from lakeline.pipelines.shipments import SHIPMENTS


def test_parse_every_kind_with_aliases_and_defaults() -> None:
    rs = parse_ruleset("t", [
        {"kind": "not_null", "column": "a", "mostly": 0.99},
        {"kind": "unique", "column": "a", "name": "ids are unique"},
        {"kind": "between", "column": "n", "min_value": 0, "max_value": 5, "strict_min": True},
        {"kind": "in_set", "column": "s", "value_set": ["x", "y"]},
        {"kind": "regex", "column": "s", "params": {"pattern": "^[a-z]+$"}},
        {"kind": "row_count", "min": 1},
        {"kind": "columns", "columns": ["a", "n"], "exact": True},
        {"kind": "column_types", "types": {"a": "VARCHAR"}},
        {"kind": "column_types", "column": "n", "type": "BIGINT"},
        {"kind": "freshness", "column": "t", "max_age": "36h"},
        {"kind": "sql", "sql": "n <= 2 * m"},
    ], origin="test")
    assert [r.kind for r in rs.rules] == ["not_null", "unique", "between", "in_set", "regex", "row_count",
                                          "columns", "column_types", "column_types", "freshness", "sql"]
    assert rs.rules[0] == Rule("not_null", "a", {}, 0.99, "")
    assert rs.rules[1].label == "ids are unique"
    assert rs.rules[0].label == "expect_column_values_to_not_be_null"
    assert rs.rules[2].params == {"min": 0, "max": 5, "strict_min": True}
    assert rs.rules[3].params == {"values": ["x", "y"]}
    assert rs.rules[4].params == {"pattern": "^[a-z]+$"}
    assert rs.rules[9].expectation_type == "expect_column_max_to_be_recent"


@pytest.mark.parametrize(("raw", "reason"), [
    ({"column": "a"}, "rules[1]: kind must be one of not_null, unique, between"),
    ({"kind": "not_nul", "column": "a"}, "rules[1] (not_nul): kind must be one of"),
    ({"kind": "not_null"}, "rules[1] (not_null): needs a column"),
    ({"kind": "row_count", "column": "a", "min": 1}, "rules[1] (row_count): a row_count rule takes no column"),
    ({"kind": "between", "column": "a"}, "rules[1] (between): needs min and/or max"),
    ({"kind": "between", "column": "a", "mn": 1}, "rules[1] (between): unknown parameter 'mn' (parameters of "
                                                  "between: max, min, strict_max, strict_min)"),
    ({"kind": "between", "column": "a", "min": 5, "max": 1}, "min 5 is greater than max 1"),
    ({"kind": "between", "column": "a", "min": [1]}, "min must be a number or a date/time string"),
    ({"kind": "in_set", "column": "a"}, "rules[1] (in_set): missing parameter values"),
    ({"kind": "in_set", "column": "a", "values": []}, "values must be a non-empty list"),
    ({"kind": "regex", "column": "a", "pattern": "([a-z"}, "pattern '([a-z' is not a regular expression"),
    ({"kind": "not_null", "column": "a", "mostly": 1.5}, "mostly must be a number in 0..1, got 1.5"),
    ({"kind": "not_null", "column": "a", "mostly": True}, "mostly must be a number in 0..1"),
    ({"kind": "row_count", "min": 1.5}, "min and max of row_count must be integers"),
    ({"kind": "columns", "columns": "a"}, "columns must be a non-empty list of column names"),
    ({"kind": "column_types", "types": {}}, "give column + type, or types = "),
    ({"kind": "freshness", "column": "t", "max_age": "soon"}, "max_age must be seconds or like '24h'"),
    ({"kind": "sql", "sql": "a > 1; DROP TABLE x"}, "';' is not allowed"),
    ("not_null", "rules[1]: a rule must be a table"),
])
def test_parse_errors_name_origin_index_and_reason(raw: Any, reason: str) -> None:
    rules = [{"kind": "not_null", "column": "ok"}, raw]
    with pytest.raises(ConfigError) as exc:
        parse_ruleset("carbon", rules, origin="/lake/lakeline.toml [pipelines.carbon.dq]")
    message = str(exc.value)
    assert message.startswith("/lake/lakeline.toml [pipelines.carbon.dq]: ruleset 'carbon': rules[1]")
    assert reason in message


def test_rules_must_be_a_list() -> None:
    with pytest.raises(ConfigError, match=r"^f.toml: ruleset 'x': rules must be a list of tables, got dict$"):
        parse_ruleset("x", {"kind": "not_null"}, origin="f.toml")  # type: ignore[arg-type]


def test_parse_age() -> None:
    assert [parse_age(v) for v in (90, "90", "90m", "1.5h", "2d", "1w")] == [90, 90, 5400, 5400, 172800, 604800]
    with pytest.raises(ValueError, match="positive"):
        parse_age(0)


def test_parse_rule_reason_without_origin() -> None:
    with pytest.raises(ValueError, match="needs a column"):
        parse_rule({"kind": "unique"})


BUILTIN = {**{f"shipments.{t}": rs for t, rs in SHIPMENTS.rulesets().items()}, "carbon": CARBON.rulesets()[""]}


def test_pipelines_own_rulesets_are_specs_3_and_carbon_md() -> None:
    assert set(BUILTIN) == {"shipments.shipments", "shipments.tracking_events", "shipments.invoice_lines", "carbon"}
    assert [(r.kind, r.column, r.params) for r in BUILTIN["shipments.shipments"].rules] == [
        ("row_count", None, {"min": 1}), ("not_null", "shipment_id", {}), ("unique", "shipment_id", {}),
        ("not_null", "event_time", {}), ("between", "weight_kg", {"min": 0, "max": 200})]
    assert [(r.kind, r.column) for r in BUILTIN["shipments.tracking_events"].rules] == [
        ("row_count", None), ("not_null", "shipment_id"), ("not_null", "event_time"), ("not_null", "status")]
    assert [(r.kind, r.column, r.params) for r in BUILTIN["shipments.invoice_lines"].rules][3:] == [
        ("between", "quantity", {"min": 1, "max": 1000}), ("between", "unit_price", {"min": 0, "max": 100000})]
    assert [(r.kind, r.column, r.mostly) for r in BUILTIN["carbon"].rules] == [
        ("not_null", "activity_event_id", 1.0), ("unique", "activity_event_id", 1.0), ("not_null", "asset_id", 1.0)]


def _home(tmp_path: Path, toml: str) -> Path:
    (tmp_path / "lakeline.toml").write_text(toml)
    return tmp_path


def test_ruleset_for_config_then_the_pipelines_own(tmp_path: Path) -> None:
    home = _home(tmp_path, """
[pipelines.carbon.dq]
rules = [{kind = "not_null", column = "geo", mostly = 0.5}]

[pipelines.shipments.dq.invoice_lines]
rules = [{kind = "sql", sql = "line_total = quantity * unit_price", name = "totals add up"}]
""")
    s = load_settings(home)
    assert s.pipelines["carbon"]["dq"]["rules"][0]["column"] == "geo"
    carbon = ruleset_for(s, "carbon", defaults=CARBON.rulesets())
    assert (carbon.name, carbon.rules) == ("carbon", (Rule("not_null", "geo", {}, 0.5),))
    inv = ruleset_for(s, "shipments", "invoice_lines", defaults=SHIPMENTS.rulesets())
    assert (inv.name, [r.label for r in inv.rules]) == ("shipments.invoice_lines", ["totals add up"])
    assert ruleset_for(s, "shipments", "shipments", defaults=SHIPMENTS.rulesets()) is BUILTIN["shipments.shipments"]
    assert ruleset_for(s, "shipments", "tracking_events",
                       defaults=SHIPMENTS.rulesets()) is BUILTIN["shipments.tracking_events"]
    assert ruleset_for(load_settings(tmp_path / "empty"), "carbon", defaults=CARBON.rulesets()) is BUILTIN["carbon"]
    with pytest.raises(NotFoundError, match=r"no data quality rules for retail: declare `rules = \[...\]` under "
                                            r"\[pipelines.retail.dq\]"):
        ruleset_for(s, "retail")


def test_ruleset_for_bad_config_names_the_file_and_section(tmp_path: Path) -> None:
    home = _home(tmp_path, '[pipelines.carbon.dq]\nrules = [{kind = "unique", column = "a"}, {kind = "between", '
                           'column = "b"}]\n')
    with pytest.raises(ConfigError) as exc:
        ruleset_for(load_settings(home), "carbon")
    assert str(exc.value) == (f"{home / 'lakeline.toml'} [pipelines.carbon.dq]: ruleset 'carbon': rules[1] (between): "
                              "needs min and/or max")


def test_pipelines_section_is_a_read_only_view(tmp_path: Path) -> None:
    s = load_settings(_home(tmp_path, "[pipelines.carbon]\nbatch = 1\n"))
    with pytest.raises(TypeError):
        s.pipelines["x"] = 1  # type: ignore[index]
    assert dict(load_settings(tmp_path / "none").pipelines) == {}
