"""A data quality result as one self-contained HTML page (inline CSS, no script, no assets).

Every value from the data or the config is HTML-escaped, so a cell holding ``<script>`` is
shown as text.
"""

from __future__ import annotations

import html
import json
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;
color:#1f2328;padding:0 1rem}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
.badge{display:inline-block;padding:.2rem .7rem;border-radius:1rem;font-weight:700;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}tr.failed td{background:#ffebe9}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.ex{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.ex{white-space:pre-wrap;word-break:break-all;color:#57606a}.meta td:first-child{width:12rem;color:#57606a}
"""


def _e(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, default=str)
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    if isinstance(value, float):
        return _e(f"{value:,.4f}".rstrip("0").rstrip("."))
    if isinstance(value, int) and not isinstance(value, bool):
        return _e(f"{value:,}")
    return _e(value)


def _rule_rows(results: list[dict[str, Any]]) -> str:
    out = []
    for r in results:
        res = r.get("result") or {}
        kwargs = dict(r.get("kwargs") or {})
        column = kwargs.pop("column", "")
        ok = bool(r.get("success"))
        examples = res.get("partial_unexpected_list") or []
        detail = ""
        if r.get("exception_info"):
            detail = _e(r["exception_info"].get("exception_message"))
        elif "observed_value" in res:
            detail = "observed: " + _e(res["observed_value"])
            mismatch = (res.get("details") or {}).get("mismatched")
            if mismatch:
                detail += "<br>mismatched: " + _e(mismatch)
        if examples:
            detail += ("<br>" if detail else "") + "examples: " + ", ".join(_e(x) if x is not None else "null"
                                                                         for x in examples)
        name = r.get("rule") or r.get("expectation_type")
        title = _e(name)
        if name != r.get("expectation_type"):
            title += f"<br><code>{_e(r.get('expectation_type'))}</code>"
        out.append(
            f"<tr class=\"{'passed' if ok else 'failed'}\"><td>{title}</td><td>{_e(column)}</td>"
            f"<td><code>{_e(kwargs)}</code></td><td class=num>{_num(res.get('unexpected_count'))}</td>"
            f"<td class=num>{_num(res.get('unexpected_percent'))}</td>"
            f"<td><span class=\"badge {'pass' if ok else 'fail'}\">{'pass' if ok else 'FAIL'}</span></td>"
            f"<td class=ex>{detail}</td></tr>")
    return "\n".join(out)


def _profile_rows(profile: dict[str, Any]) -> str:
    out = []
    for name, p in profile.items():
        top = ", ".join(f"{_e(t.get('value'))} ({_num(t.get('count'))})" for t in p.get("top_values") or [])
        out.append(
            f"<tr><td>{_e(name)}</td><td><code>{_e(p.get('type'))}</code></td>"
            + "".join(f"<td class=num>{_num(p.get(k))}</td>"
                      for k in ("count", "missing", "distinct", "duplicates", "min", "max", "mean"))
            + f"<td class=ex>{top}</td></tr>")
    return "\n".join(out)


def render_html(result: dict[str, Any]) -> str:
    """A page a person opens: pass/fail header, statistics, a row per rule with failing examples, profile."""
    ok = bool(result.get("success"))
    stats = result.get("statistics") or {}
    name = result.get("ruleset") or result.get("record_type") or ""
    title = f"Data quality: {name} — {'passed' if ok else 'FAILED'}"
    meta = {k: result.get(k) for k in ("source", "ruleset", "record_type", "dt", "run_id", "generated_at")
            if result.get(k) is not None}
    gate = result.get("gate")
    if isinstance(gate, dict):
        meta["gate"] = f"{gate.get('action', '')}: {gate.get('dest_zone', '')}/{gate.get('dest_key', '')}"
    meta_rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in meta.items())
    stat_rows = "".join(f"<tr><td>{_e(k)}</td><td class=num>{_num(v)}</td></tr>" for k, v in stats.items())
    results = result.get("results") or []
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p><span class=\"badge {'pass' if ok else 'fail'}\">{'PASS' if ok else 'FAIL'}</span> "
        f"{sum(1 for r in results if r.get('success'))} of {len(results)} rules passed</p>",
        f"<table class=meta>{meta_rows}</table>",
    ]
    if stat_rows:
        parts.append(f"<h2>Statistics</h2><table class=meta>{stat_rows}</table>")
    parts.append("<h2>Rules</h2><table><thead><tr><th>rule</th><th>column</th><th>parameters</th>"
                 "<th>unexpected</th><th>%</th><th>result</th><th>details and failing examples</th>"
                 "</tr></thead>"
                 f"<tbody>{_rule_rows(results)}</tbody></table>")
    profile = result.get("profile")
    if profile:
        parts.append("<h2>Profile</h2><table><thead><tr><th>column</th><th>type</th><th>count</th><th>missing</th>"
                     "<th>distinct</th><th>duplicates</th><th>min</th><th>max</th><th>mean</th>"
                     f"<th>top values</th></tr></thead><tbody>{_profile_rows(profile)}</tbody></table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


__all__ = ["render_html"]
