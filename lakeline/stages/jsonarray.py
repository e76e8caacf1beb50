"""A landed JSON array split into lines, one element per line, by DuckDB's JSON reader.

Each element keeps its own text (DuckDB re-serialises it compactly, on one line), so the array
is classified by the same SQL as JSON lines (:mod:`lakeline.stages.formats`): a number that is
not finite (``NaN``, ``Infinity``, ``1e400``) is a ``TYPE_ERROR`` of its element and a repeated
key a ``DUPLICATE_FIELD`` -- a Python parser would refuse the whole file for the former
and keep one value of the latter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from lakeline import reasons
from lakeline.duck import duckdb_connection
from lakeline.stages.lines import BOM

_SPLIT = """
WITH d AS (SELECT json_extract(CAST($1 AS JSON), '$[*]') AS l)
SELECT len(l),
  array_to_string(list_transform(l, lambda x: CASE WHEN json_type(x) = 'OBJECT' THEN CAST(x AS VARCHAR)
                                                    ELSE '' END), chr(10)),
  list_filter(list_transform(l, lambda x, i: {'i': i, 'type': json_type(x), 'text': CAST(x AS VARCHAR)}),
              lambda s: s.type <> 'OBJECT')
FROM d
"""


@dataclass
class JsonArray:
    """The array's elements: ``lines`` one per line (an element that is not an object is a
    blank line, so line n is element n), and the elements that are not objects as
    ``(index, text)``."""

    count: int
    lines: bytes
    not_objects: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class NotAnArray:
    """Why an object is not a JSON array: its reason code and message."""

    reason: str
    message: str


def split_array(raw: bytes) -> JsonArray | NotAnArray:
    """Split a landed JSON array (a leading BOM is skipped) into lines."""
    body = raw.removeprefix(BOM)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return NotAnArray(reasons.ENCODING_ERROR, f"object is not valid UTF-8 at byte {exc.start}")
    con = duckdb_connection(1)
    try:
        row = con.execute("SELECT json_valid($1), CASE WHEN json_valid($1) THEN json_type($1) END",
                          [text]).fetchone()
        assert row is not None
        valid, kind = row
        if not valid:
            return NotAnArray(reasons.MALFORMED_JSON, f"object is not a valid JSON array: {_why(body)}")
        if kind != "ARRAY":
            return NotAnArray(reasons.NOT_AN_OBJECT, "object is JSON but not an array")
        split = con.execute(_SPLIT, [text]).fetchone()
        assert split is not None
    finally:
        con.close()
    count, lines, others = split
    return JsonArray(int(count), str(lines).encode(), [(int(o["i"]), str(o["text"])) for o in others])


def _why(body: bytes) -> str:
    """The parse error of an invalid document (orjson words it with line and column)."""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return str(exc)
    return "malformed JSON"


__all__ = ["JsonArray", "NotAnArray", "split_array"]
