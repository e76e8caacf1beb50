"""lakeline's log handler writes to the stderr of the moment: a caller that swapped and closed
stderr (a captured test, click's runner) leaves no handler bound to a closed file."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from lakeline import log


def test_logs_follow_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    log.setup()
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logging.getLogger("lakeline.test").warning("into the first stream")
    assert '"msg":"into the first stream"' in first.getvalue()
    first.close()  # what a runner does with its capture when it is done
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("lakeline.test").warning("into the second stream")
    assert '"msg":"into the second stream"' in second.getvalue()
