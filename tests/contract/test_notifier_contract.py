"""Notifier contract: notify returns what was sent; sent() reads it back newest first."""
# ruff: noqa: F811  (pytest fixtures imported from store_backends are redefined as arguments)

from __future__ import annotations

import json
import logging
import multiprocessing
import re
from pathlib import Path

import pytest

from lakeline import envvars
from lakeline.adapters.local.notifier import OutboxNotifier
from lakeline.ports import Notifier
from tests.contract.store_backends import moto_endpoint, notifier  # noqa: F401

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_notify_and_sent(notifier: Notifier) -> None:
    assert notifier.sent() == []
    first = notifier.notify("DLQ not empty", "3 messages in ingest-dlq", {"queue": "ingest-dlq", "n": 3})
    assert first.subject == "DLQ not empty"
    assert first.attributes == {"queue": "ingest-dlq", "n": 3}
    assert first.message_id
    assert ISO_Z.match(first.sent_at), first.sent_at
    second = notifier.notify("Batch failed", "bad file", None)
    assert second.attributes == {}
    assert second.message_id != first.message_id
    sent = notifier.sent()
    assert [n.message_id for n in sent] == [second.message_id, first.message_id]
    assert sent[1] == first
    assert [n.subject for n in notifier.sent(limit=1)] == ["Batch failed"]


def test_many_notifications_limit(notifier: Notifier) -> None:
    for i in range(250):
        notifier.notify(f"s{i}", "m" * 500)
    sent = notifier.sent(limit=120)
    assert [n.subject for n in sent] == [f"s{i}" for i in range(249, 129, -1)]
    assert len(notifier.sent()) == 100


# ---- local backend specifics ----------------------------------------------------------------
def test_outbox_file_and_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    n = OutboxNotifier(tmp_path / "outbox")
    with caplog.at_level(logging.INFO, logger="lakeline.notify"):
        note = n.notify("subject ✓", "message", {"k": "v"})
    lines = (tmp_path / "outbox" / "notifications.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {
        "message_id": note.message_id,
        "sent_at": note.sent_at,
        "subject": "subject ✓",
        "message": "message",
        "attributes": {"k": "v"},
    }
    records = [r for r in caplog.records if r.name == "lakeline.notify"]
    assert len(records) == 1
    logged = json.loads(records[0].getMessage())
    assert logged["subject"] == "subject ✓" and logged["message_id"] == note.message_id


def test_partial_line_from_crash_is_skipped(tmp_path: Path) -> None:
    n = OutboxNotifier(tmp_path)
    n.notify("one", "1")
    with open(tmp_path / "notifications.jsonl", "ab") as f:
        f.write(b'{"message_id": "torn", "sub')  # a writer died mid-line
    n.notify("two", "2")
    assert [x.subject for x in n.sent()] == ["two", "one"]


def test_failing_smtp_does_not_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(envvars.SMTP_PASSWORD, "s3cret-pw")
    smtp = {"host": "127.0.0.1", "port": 1, "user": "ops", "from": "lake@x", "to": "ops@x"}
    n = OutboxNotifier(tmp_path, smtp)
    with caplog.at_level(logging.DEBUG, logger="lakeline.notify"):
        note = n.notify("subject", "body")
    assert [x.message_id for x in n.sent()] == [note.message_id]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "127.0.0.1:1" in warnings[0].getMessage()
    assert "s3cret-pw" not in caplog.text


def _notify_many(outbox: str, worker: int) -> None:
    n = OutboxNotifier(Path(outbox))
    for i in range(50):
        n.notify(f"w{worker}-{i}", "x" * 2000, {"worker": worker, "i": i})


def test_processes_append_whole_lines(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_notify_many, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = (tmp_path / "notifications.jsonl").read_bytes().splitlines()
    assert len(lines) == 200
    parsed = [json.loads(line) for line in lines]
    assert sorted(r["subject"] for r in parsed) == sorted(f"w{w}-{i}" for w in range(4) for i in range(50))
