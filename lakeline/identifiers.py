"""Checks of the identifiers lakeline stores (state keys, lineage ids): one rule, one wording."""

from __future__ import annotations

from typing import Any

from lakeline.errors import UsageError


def checked_text(value: Any, what: str, limit: int, over_limit: str) -> str:
    """``value`` if it is a non-empty string of at most ``limit`` UTF-8 bytes; otherwise a
    :class:`UsageError` naming ``what`` (``over_limit`` ends the message about the size)."""
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} must be a non-empty string, got {value!r}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise UsageError(f"{what} {value!r} is not valid Unicode text") from None
    if size > limit:
        raise UsageError(f"{what} is {size} bytes; {over_limit}")
    return value
