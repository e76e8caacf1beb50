"""Every environment variable lakeline reads, in one place.

Settings can be overridden with ``LAKELINE__<SECTION>__<KEY>`` (double underscores), e.g.
``LAKELINE__QUEUE__VISIBILITY_TIMEOUT=60``; see :mod:`lakeline.config`.
"""

from __future__ import annotations

#: The lake's home directory (holds ``lakeline.toml`` and the zones).
HOME = "LAKELINE_HOME"
#: Prefix of setting overrides: ``LAKELINE__SECTION__KEY``.
SETTING_PREFIX = "LAKELINE__"
#: Log level for lakeline's structured logs (DEBUG, INFO, WARNING, ERROR).
LOG_LEVEL = "LAKELINE_LOG_LEVEL"
#: Test hook: crash (os._exit) at the named point, used by the crash-recovery tests.
CRASH_AT = "LAKELINE_CRASH_AT"
#: SMTP password for the optional e-mail notifier; never stored in lakeline.toml.
SMTP_PASSWORD = "LAKELINE_SMTP_PASSWORD"  # noqa: S105 - a variable name, not a secret
#: Set on a deployed workflow task function: the bound lakeline step it runs.
WORKFLOW_TASK = "LAKELINE_WORKFLOW_TASK"
#: on AWS, the pipeline a job function runs (its ``run`` and its schedules)
PIPELINE = "LAKELINE_PIPELINE"
#: on AWS, what the ingest function starts when a job pipeline's object lands: JSON
#: ``{pipeline: {"queue": url} | {"state_machine": arn, "input": {...}}}``
TRIGGERS = "LAKELINE_TRIGGERS"
