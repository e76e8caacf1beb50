"""The carbon pipeline's own data quality rules (carbon.md)."""

from __future__ import annotations

from lakeline.dq.rules import parse_ruleset

#: carbon.md: activity_event_id missing = 0 and duplicates = 0, asset_id missing = 0.
RULES = parse_ruleset("carbon", [
    {"kind": "not_null", "column": "activity_event_id"},
    {"kind": "unique", "column": "activity_event_id"},
    {"kind": "not_null", "column": "asset_id"},
], origin="lakeline.pipelines.carbon.rules.RULES")
