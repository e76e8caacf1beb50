"""``flat_json``: byte searches that prove a JSON-lines chunk holds no nested value, so the fast
path may skip the nested-string check (issue 18, part 3)."""

from __future__ import annotations

import pytest

from lakeline.stages.fastpath import flat_json


@pytest.mark.parametrize(("data", "lines", "flat"), [
    (b'{"a":"b","n":1.5}\n{"a":null}\n', 2, True),
    (b'{"a":"line\\nbreak \\"q\\" a\\/b"}\n', 1, True),  # escapes that cannot make a brace
    (b'{"a":"\\u007b}"}\n', 1, False),  # \u007b is a brace once decoded
    (b'{"a":{"b":1}}\n', 1, False),  # a nested object
    (b'{"a":"{not json"}\n', 1, False),  # a string holding a brace
    (b'{"a":[1]}\n', 1, False),  # an array
    (b'{"a":"x]"}\n', 1, True),  # a closing bracket alone opens nothing
    (b'{"a":1}\n\n', 2, False),  # a line without its own object
])
def test_flat_json(data: bytes, lines: int, flat: bool) -> None:
    assert flat_json(data, lines) is flat

