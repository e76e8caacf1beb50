"""Data quality rules and rulesets: what a dataset must satisfy, declared in the config.

A rule is one check on a table (``row_count``, ``columns``, ``column_types``) or on a column
(``not_null``, ``unique``, ``between``, ``in_set``, ``regex``, ``freshness``) or a custom SQL
row condition (``sql``). Column rules take ``mostly``: the fraction of rows that must pass,
with Great Expectations semantics (nulls are not counted against ``unique``, ``between``,
``in_set`` and ``regex``; ``not_null`` and ``sql`` count every row, and a row whose ``sql``
condition is NULL fails it).

Rulesets come from ``lakeline.toml``::

    [pipelines.carbon.dq]
    rules = [
      {kind = "not_null", column = "activity_event_id"},
      {kind = "unique", column = "activity_event_id"},
      {kind = "between", column = "raw_data", min = 0, max = 1e6, mostly = 0.99},
      {kind = "in_set", column = "scope", values = [1, 2, 3]},
      {kind = "regex", column = "asset_id", pattern = "^[a-z]+[0-9]+$"},
    ]

    [pipelines.shipments.dq.invoice_lines]      # one table of the pipeline
    rules = [{kind = "sql", sql = "line_total = quantity * unit_price", mostly = 0.999}]

Without config, the pipeline's own rules apply: a pipeline file's ``rules`` (the specs §3
expectations of the shipments tables) or a Python pipeline's ``rulesets()`` (the carbon.md rules).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakeline.config import CONFIG_FILE, Settings
from lakeline.errors import ConfigError, NotFoundError

#: kind -> (GE-like expectation type, needs a column, allowed params, required params)
KINDS: dict[str, tuple[str, bool, frozenset[str], frozenset[str]]] = {
    "not_null": ("expect_column_values_to_not_be_null", True, frozenset(), frozenset()),
    "unique": ("expect_column_values_to_be_unique", True, frozenset(), frozenset()),
    "between": ("expect_column_values_to_be_between", True,
                frozenset({"min", "max", "strict_min", "strict_max"}), frozenset()),
    "in_set": ("expect_column_values_to_be_in_set", True, frozenset({"values"}), frozenset({"values"})),
    "regex": ("expect_column_values_to_match_regex", True, frozenset({"pattern"}), frozenset({"pattern"})),
    "row_count": ("expect_table_row_count_to_be_between", False, frozenset({"min", "max"}), frozenset()),
    "columns": ("expect_table_columns_to_match_set", False, frozenset({"columns", "exact"}),
                frozenset({"columns"})),
    "column_types": ("expect_column_values_to_be_of_type", False, frozenset({"type", "types"}), frozenset()),
    "freshness": ("expect_column_max_to_be_recent", True, frozenset({"max_age", "now"}),
                  frozenset({"max_age"})),
    "sql": ("expect_rows_to_satisfy_sql", False, frozenset({"sql"}), frozenset({"sql"})),
}

#: GE spellings accepted as aliases of our parameter names.
_ALIASES = {"min_value": "min", "max_value": "max", "value_set": "values", "regex": "pattern",
            "column_set": "columns", "exact_match": "exact", "type_": "type"}

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Rule:
    """One data quality rule (see the module docstring for the kinds and their params)."""

    kind: str
    column: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    mostly: float = 1.0
    name: str = ""

    @property
    def expectation_type(self) -> str:
        """The Great Expectations-like name of the check this rule performs."""
        return KINDS[self.kind][0]

    @property
    def label(self) -> str:
        """``name`` if given, else the expectation type."""
        return self.name or self.expectation_type


@dataclass(frozen=True)
class Ruleset:
    """A named, ordered set of rules."""

    name: str
    rules: tuple[Rule, ...]


def parse_age(value: Any) -> float:
    """``max_age`` in seconds: a number of seconds or ``"90m"``, ``"24h"``, ``"7d"``, ``"2w"``."""
    if isinstance(value, bool):
        raise ValueError(f"max_age must be seconds or like '24h', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _AGE.match(str(value))
        if not m:
            raise ValueError(f"max_age must be seconds or like '24h', '7d', got {value!r}")
        seconds = float(m.group(1)) * _AGE_UNITS[m.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"max_age must be positive, got {value!r}")
    return seconds


def _check_params(kind: str, column: str | None, params: dict[str, Any]) -> None:
    """Raise ValueError naming the reason when a rule's params do not fit its kind."""
    def number(key: str) -> None:
        v = params.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float | str)):
            raise ValueError(f"{key} must be a number or a date/time string, got {v!r}")

    if kind in {"between", "row_count"}:
        if "min" not in params and "max" not in params:
            raise ValueError("needs min and/or max")
        number("min")
        number("max")
        if kind == "row_count" and any(not isinstance(params.get(k, 0), int)
                                       or isinstance(params.get(k), bool) for k in ("min", "max")):
            raise ValueError("min and max of row_count must be integers")
        lo, hi = params.get("min"), params.get("max")
        if lo is not None and hi is not None and type(lo) is type(hi) and lo > hi:
            raise ValueError(f"min {lo!r} is greater than max {hi!r}")
    elif kind == "in_set":
        values = params["values"]
        if not isinstance(values, list | tuple) or not values:
            raise ValueError("values must be a non-empty list")
        if any(isinstance(v, dict | list) for v in values):
            raise ValueError("values must be scalars")
    elif kind == "regex":
        pattern = params["pattern"]
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("pattern must be a non-empty string")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from None
    elif kind == "columns":
        cols = params["columns"]
        if not isinstance(cols, list | tuple) or not cols or not all(isinstance(c, str) and c for c in cols):
            raise ValueError("columns must be a non-empty list of column names")
    elif kind == "column_types":
        if column is not None:
            if not isinstance(params.get("type"), str) or "types" in params:
                raise ValueError("with a column, give type = \"<DuckDB type>\"")
        else:
            types = params.get("types")
            if not isinstance(types, dict) or not types or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in types.items()):
                raise ValueError("give column + type, or types = {column = \"<DuckDB type>\", …}")
    elif kind == "freshness":
        parse_age(params["max_age"])
    elif kind == "sql":
        if not isinstance(params["sql"], str) or not params["sql"].strip():
            raise ValueError("sql must be a non-empty SQL boolean expression over the columns")
        if ";" in params["sql"]:
            raise ValueError("sql is one boolean expression; ';' is not allowed")


def parse_rule(raw: Any) -> Rule:
    """One rule from its config table; ValueError with the reason when it is invalid."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"a rule must be a table like {{kind = \"not_null\", column = \"x\"}}, got {raw!r}")
    body = dict(raw)
    kind = body.pop("kind", None)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    _, needs_column, allowed, required = KINDS[kind]
    column = body.pop("column", None)
    if column is not None and (not isinstance(column, str) or not column):
        raise ValueError(f"column must be a non-empty string, got {column!r}")
    if needs_column and column is None:
        raise ValueError("needs a column")
    if not needs_column and column is not None and kind != "column_types":
        raise ValueError(f"a {kind} rule takes no column")
    mostly = body.pop("mostly", 1.0)
    if isinstance(mostly, bool) or not isinstance(mostly, int | float) or not 0.0 <= float(mostly) <= 1.0:
        raise ValueError(f"mostly must be a number in 0..1, got {mostly!r}")
    name = body.pop("name", "")
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, got {name!r}")
    nested = body.pop("params", {})
    if not isinstance(nested, Mapping):
        raise ValueError("params must be a table")
    params: dict[str, Any] = {}
    for key, value in {**nested, **body}.items():
        canon = _ALIASES.get(key, key)
        if canon not in allowed:
            expected = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"unknown parameter {key!r} (parameters of {kind}: {expected})")
        params[canon] = list(value) if isinstance(value, tuple) else value
    missing = sorted(required - params.keys())
    if missing:
        raise ValueError(f"missing parameter {', '.join(missing)}")
    _check_params(kind, column, params)
    return Rule(kind=kind, column=column, params=params, mostly=float(mostly), name=name)


def parse_ruleset(name: str, raw: list[dict[str, Any]], *, origin: str) -> Ruleset:
    """Validate config rules; a bad rule raises :class:`ConfigError` naming ``origin``, its index and why."""
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"{origin}: ruleset {name!r}: rules must be a list of tables, "
                          f"got {type(raw).__name__}")
    rules = []
    for i, item in enumerate(raw):
        try:
            rules.append(parse_rule(item))
        except ValueError as exc:
            kind = item.get("kind") if isinstance(item, Mapping) else None
            what = f" ({kind})" if isinstance(kind, str) else ""
            raise ConfigError(f"{origin}: ruleset {name!r}: rules[{i}]{what}: {exc}") from None
    return Ruleset(name, tuple(rules))


def _dq_section(settings: Settings, pipeline: str) -> Mapping[str, Any]:
    pipes = settings.pipelines
    section = pipes.get(pipeline, {}) if isinstance(pipes, Mapping) else {}
    origin = f"{settings.home / CONFIG_FILE}"
    if not isinstance(section, Mapping):
        raise ConfigError(f"{origin}: [pipelines.{pipeline}] must be a table")
    dq = section.get("dq", {})
    if not isinstance(dq, Mapping):
        raise ConfigError(f"{origin}: [pipelines.{pipeline}.dq] must be a table")
    return dq


def ruleset_for(settings: Settings, pipeline: str, table: str | None = None, *,
                defaults: Mapping[str, Ruleset] | None = None) -> Ruleset:
    """The effective ruleset of ``pipeline`` (and one of its tables).

    Order: ``[pipelines.<pipeline>.dq.<table>] rules``, ``[pipelines.<pipeline>.dq] rules``,
    then the pipeline's own rules (``defaults``: by table name, ``""`` for the whole
    pipeline); :class:`NotFoundError` if none."""
    dq = _dq_section(settings, pipeline)
    origin = f"{settings.home / CONFIG_FILE}"
    if table is not None:
        sub = dq.get(table)
        if isinstance(sub, Mapping) and "rules" in sub:
            return parse_ruleset(f"{pipeline}.{table}", sub["rules"],
                                 origin=f"{origin} [pipelines.{pipeline}.dq.{table}]")
    if "rules" in dq:
        return parse_ruleset(pipeline, dq["rules"], origin=f"{origin} [pipelines.{pipeline}.dq]")
    own = defaults or {}
    for name in ((table,) if table else ()) + ("",):
        if name in own:
            return own[name]
    where = f"[pipelines.{pipeline}.dq{'.' + table if table else ''}]"
    known = ", ".join(f"{pipeline}.{t}" if t else pipeline for t in own) or "none"
    raise NotFoundError(f"no data quality rules for {pipeline}{'.' + table if table else ''}: declare "
                        f"`rules = [...]` under {where} in {origin} (the pipeline's own rulesets: {known})")


__all__ = ["KINDS", "Rule", "Ruleset", "parse_age", "parse_rule", "parse_ruleset", "ruleset_for"]
