"""``[pipelines.totesys]``: the totesys pipeline's settings."""

from __future__ import annotations

from dataclasses import dataclass

from lakeline.config import Settings, check, pipeline_settings
from lakeline.errors import UsageError
from lakeline.schedule import parse

NAME = "totesys"
#: what ``schedule`` accepts, named in the error of a bad expression.
SCHEDULE_FORMS = ("rate(value unit) with unit minute(s), hour(s) or day(s), e.g. rate(30 minutes); "
                  "cron(minutes hours day-of-month month day-of-week year), e.g. cron(0/30 * * * ? *); "
                  "or \"\" to turn the schedule off")


@dataclass(frozen=True)
class TotesysSettings:
    """Incremental extraction from an OLTP database (specs §2).

    The source URL is resolved at run time: ``--source``, else ``source_url`` (keep passwords
    out of the file: use ``LAKELINE__PIPELINES__TOTESYS__SOURCE_URL``), else the parameter
    named ``source_url_parameter`` (SSM Parameter Store on AWS), else the Secrets Manager
    secret ``source_secret_id``. ``overlap_seconds`` re-reads that much before the watermark so
    rows committed late are not missed (duplicates are dropped). After
    ``alert_after_failures`` consecutive failed runs the notifier alerts the administrators.
    ``schedule`` (an EventBridge expression; empty turns it off) is when ``lakeline serve``
    extracts, once a source is configured here. ``lease_seconds``: how long an extraction's
    lease lasts without renewal (it is renewed as the extraction progresses), so a killed
    extraction blocks the next one at most that long.
    """

    #: the source database URL (keep passwords out of the file: set
    #: `LAKELINE__PIPELINES__TOTESYS__SOURCE_URL`)
    source_url: str = ""
    #: else the parameter holding the URL (SSM Parameter Store on AWS)
    source_url_parameter: str = ""
    #: else the Secrets Manager secret holding it
    source_secret_id: str = ""
    #: rows per extracted chunk of a table
    chunk_rows: int = 50000
    #: re-read this much before the watermark, so rows committed late are not missed (duplicates are dropped)
    overlap_seconds: int = 60
    #: tries of a failing source query before the extraction fails
    retries: int = 3
    #: seconds between those tries
    retry_delay: float = 1.0
    #: consecutive failed runs after which the notifier alerts the administrators
    alert_after_failures: int = 3
    #: when `serve` extracts, once a source is configured: an EventBridge expression; empty: never
    schedule: str = "rate(30 minutes)"
    #: how long an extraction's lease lasts without renewal, so a killed extraction blocks the next one at
    #: most that long
    lease_seconds: int = 900

    @property
    def has_source(self) -> bool:
        """True when a source is configured (a scheduled extraction knows where to read)."""
        return bool(self.source_url or self.source_url_parameter or self.source_secret_id)


def totesys_settings(settings: Settings) -> TotesysSettings:
    """The validated ``[pipelines.totesys]`` settings of a lake."""
    found = pipeline_settings(settings, NAME, TotesysSettings)
    check(found.chunk_rows >= 1, settings, NAME, "chunk_rows", "must be >= 1")
    check(found.overlap_seconds >= 0, settings, NAME, "overlap_seconds", "must be >= 0")
    check(found.retries >= 1, settings, NAME, "retries", "must be >= 1")
    check(found.lease_seconds >= 1, settings, NAME, "lease_seconds", "must be >= 1")
    if found.schedule:
        try:
            parse(found.schedule)
        except UsageError as exc:
            check(False, settings, NAME, "schedule", f"{exc}; allowed forms: {SCHEDULE_FORMS}")
    return found
