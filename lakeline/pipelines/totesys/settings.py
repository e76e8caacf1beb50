"""``[pipelines.totesys]``: the totesys pipeline's settings."""

from __future__ import annotations

from dataclasses import dataclass

from lakeline.config import Settings, check, pipeline_settings

NAME = "totesys"


@dataclass(frozen=True)
class TotesysSettings:
    """Incremental extraction from an OLTP database (specs §2).

    The source URL is resolved at run time: ``--source``, else ``source_url`` (keep passwords
    out of the file: use ``LAKELINE__PIPELINES__TOTESYS__SOURCE_URL``), else the parameter
    named ``source_url_parameter`` (SSM Parameter Store on AWS), else the Secrets Manager
    secret ``source_secret_id``. ``overlap_seconds`` re-reads that much before the watermark so
    rows committed late are not missed (duplicates are dropped). After
    ``alert_after_failures`` consecutive failed runs the notifier alerts the administrators.
    """

    source_url: str = ""
    source_url_parameter: str = ""
    source_secret_id: str = ""
    chunk_rows: int = 50000
    overlap_seconds: int = 60
    retries: int = 3
    retry_delay: float = 1.0
    alert_after_failures: int = 3


def totesys_settings(settings: Settings) -> TotesysSettings:
    """The validated ``[pipelines.totesys]`` settings of a lake."""
    found = pipeline_settings(settings, NAME, TotesysSettings)
    check(found.chunk_rows >= 1, settings, NAME, "chunk_rows", "must be >= 1")
    check(found.overlap_seconds >= 0, settings, NAME, "overlap_seconds", "must be >= 0")
    check(found.retries >= 1, settings, NAME, "retries", "must be >= 1")
    return found
