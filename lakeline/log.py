"""Structured JSON-lines logging with run_id / request_id / pipeline on every line."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import orjson

from lakeline import envvars
from lakeline.errors import ConfigError

_CONTEXT_KEYS = ("run_id", "request_id", "pipeline", "root_id", "worker")
#: the levels ``LAKELINE_LOG_LEVEL`` accepts
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class JsonFormatter(logging.Formatter):
    """Formats records as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        extra = getattr(record, "data", None)
        if isinstance(extra, dict):
            out.update(extra)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record is emitted: a caller that swaps stderr
    (a test capturing output, click's runner, an embedding application) and closes its stream
    afterwards must not leave lakeline logging into a closed file."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def setup(level: str | None = None) -> None:
    """Send lakeline's logs as JSON lines to stderr (once per process). An unknown level
    (``LAKELINE_LOG_LEVEL=BOGUS``) is a :class:`ConfigError` naming the accepted ones."""
    chosen = level or os.environ.get(envvars.LOG_LEVEL) or "WARNING"
    if chosen.strip().upper() not in LEVELS:
        origin = "level" if level else envvars.LOG_LEVEL
        raise ConfigError(f"{origin} must be one of {', '.join(LEVELS)}, got {chosen!r}")
    root = logging.getLogger("lakeline")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.formatter.converter = __import__("time").gmtime  # type: ignore[union-attr]
    root.addHandler(handler)
    root.setLevel(chosen.strip().upper())
    root.propagate = False


def get(name: str) -> logging.Logger:
    """A lakeline logger."""
    return logging.getLogger(f"lakeline.{name}")
