"""The local runner: workers that drain the queues, the landing watcher, crash recovery.

A worker takes a batch from the ingest queue if it has one, else from the transform queue,
and handles each message on its own (partial batch failure): a success is deleted; a
:class:`~lakeline.errors.TerminalError` (a message that is not a chunk, unusable data) goes to
the DLQ at once, since retrying cannot help; a transient fault (:func:`lakeline.transient.is_transient`:
full disk, read-only zone, locked database, throttling) is not the message's fault: the message
is put back uncharged (:meth:`~lakeline.ports.queue.Queue.defer`) after a jittered backoff of up to
``queue.transient_backoff_max`` seconds, and ``lakeline run`` gives up after
``queue.transient_give_up_after`` seconds without progress, leaving the messages waiting (``serve``
never gives up); any other failure becomes visible again after
``retry_delay * 2**(receive_count-1)`` seconds, and the queue's redrive policy moves it to the
DLQ after ``max_receive_count`` receives.

Workers die with their parent: each asks Linux for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``) and also exits when it finds itself orphaned, so a SIGKILLed ``run``
leaves no worker behind and the next ``run`` can safely recover what was in flight.

Only one ``lakeline run`` / ``serve`` drives a lake at a time (an exclusive file lock). Whoever
holds the lock knows no other worker is alive, so it first recovers what a killed worker left:
messages it had in flight become visible, its idempotency claims are released, and its scratch
files are removed. That is how ``lakeline run`` after a ``kill -9`` finishes the work without
waiting for visibility timeouts.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import multiprocessing as mp
import os
import select
import shutil
import signal
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from lakeline import log, transient
from lakeline.config import Settings
from lakeline.errors import ConfigError, TerminalError, UsageError
from lakeline.lake import Lake
from lakeline.landing import scan_landing
from lakeline.pipelines.base import Pipeline, Report
from lakeline.pipelines.registry import Registry, load, registered
from lakeline.pipelines.tasks import definition, lake_tasks
from lakeline.ports.queue import Message, Queue
from lakeline.ports.state import IDEMPOTENCY
from lakeline.schedule import Scheduler, parse
from lakeline.stages.ingest import Ingester, IngestResult
from lakeline.stages.messages import ChunkMessage
from lakeline.stages.transform import PendingChunk, Transformer
from lakeline.workflow.rules import RuleRunner

T = TypeVar("T")

_log = log.get("runner")


@dataclass
class RunStats:
    """Counters of one worker (or the sum of several)."""

    ingested_objects: int = 0
    skipped_objects: int = 0
    chunks: int = 0
    loaded: int = 0
    rejected: int = 0
    deduplicated: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    #: tries that met a transient fault (not failures: the messages were put back uncharged)
    transient_retries: int = 0
    #: the last transient fault seen ("<queue> <message id>: <ErrorType>: <message>")
    transient_error: str = ""
    #: stream objects ingest dropped whole (unreadable, not an array, wrong header): each with
    #: ``pipeline``, ``key``, ``reason`` and ``error``
    dropped_objects: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: RunStats) -> None:
        """Add another worker's counters."""
        self.ingested_objects += other.ingested_objects
        self.skipped_objects += other.skipped_objects
        self.chunks += other.chunks
        self.loaded += other.loaded
        self.rejected += other.rejected
        self.deduplicated += other.deduplicated
        self.failures += other.failures
        self.errors.extend(other.errors[:20])
        self.transient_retries += other.transient_retries
        self.transient_error = other.transient_error or self.transient_error
        self.dropped_objects.extend(other.dropped_objects)

    def to_dict(self) -> dict[str, Any]:
        """Counters as a dict."""
        return {
            "ingested_objects": self.ingested_objects, "skipped_objects": self.skipped_objects,
            "chunks": self.chunks, "loaded": self.loaded, "rejected": self.rejected,
            "deduplicated": self.deduplicated,
            "failures": self.failures, "errors": self.errors[:20],
            "transient_retries": self.transient_retries, "transient_error": self.transient_error,
            "dropped_objects": self.dropped_objects,
        }


class Stalled:
    """When the workers began meeting only transient faults (``time.monotonic()``; 0: they are
    making progress). ``value`` as on a ``multiprocessing.Value("d")``, which the worker pool
    shares instead, so one worker's success resets every worker's clock."""

    def __init__(self) -> None:
        self.value = 0.0


class Worker:
    """Handles queue messages with the ingest and transform stages."""

    def __init__(self, lake: Lake, reg: Registry, *, threads: int = 0, worker_id: str = "w0",
                 stalled: Any = None) -> None:
        self.lake = lake
        self.worker_id = worker_id
        self.ingester = Ingester(lake, reg.route)
        self.transformer = Transformer(lake, reg.stream, threads=threads)
        self.stats = RunStats()
        self.stalled: Any = stalled if stalled is not None else Stalled()
        #: transient tries per message id, for its backoff (forgotten when it succeeds)
        self._transient_tries: dict[str, int] = {}
        #: a transient condition recorded before this worker started (a run that gave up), which
        #: this worker's first success ends
        self._recorded = transient.read_health(lake.settings.state_dir) is not None

    def close(self) -> None:
        """Release the DuckDB connection."""
        self.transformer.close()

    def step(self) -> int:
        """Handle one batch (ingest first); returns how many messages were received."""
        batch = self.lake.settings.queue.batch_size
        msgs = self.lake.ingest_queue.receive(batch)
        if msgs:
            for m in msgs:
                if self._attempt(self.lake.ingest_queue, m, self._ingest) is not None:
                    self.lake.ingest_queue.delete(m.receipt_handle)
            return len(msgs)
        msgs = self.lake.transform_queue.receive(batch)
        self._transform_batch(msgs)
        return len(msgs)

    def _ingest(self, m: Message) -> IngestResult:
        result = self.ingester.handle_event(orjson.loads(m.body), request_id=m.message_id)
        self.stats.ingested_objects += result.objects - result.skipped
        self.stats.skipped_objects += result.skipped
        self.stats.dropped_objects.extend(self.ingester.take_dropped())
        return result

    def _transform_batch(self, msgs: list[Message]) -> None:
        """Transform a batch, one chunk ahead: chunk i+1 is read and its DuckDB write started
        before chunk i is finished (published, ledgered, deleted from the queue), so the two
        overlap. Each message still succeeds or fails on its own."""
        queue = self.lake.transform_queue
        ahead: tuple[Message, PendingChunk] | None = None
        for m in msgs:
            started = self._attempt(queue, m, self._start, finished=False)
            if ahead is not None:
                self._finish(queue, *ahead)
            ahead = None if started is None else (m, started)
        if ahead is not None:
            self._finish(queue, *ahead)

    def _start(self, m: Message) -> PendingChunk:
        return self.transformer.start(ChunkMessage.from_json(m.body))

    def _finish(self, queue: Queue, m: Message, pending: PendingChunk) -> None:
        result = self._attempt(queue, m, lambda _: self.transformer.finish(pending))
        if result is None:
            self.transformer.abandon(pending)
            return
        self.stats.chunks += 1
        self.stats.loaded += result.loaded
        self.stats.rejected += result.rejected
        self.stats.deduplicated += result.deduplicated
        queue.delete(m.receipt_handle)

    def _attempt(self, queue: Queue, m: Message, fn: Callable[[Message], T], *,
                 finished: bool = True) -> T | None:
        """``fn(m)``, or ``None`` after a failure. A :class:`TerminalError` moves ``m`` to the
        DLQ at once; a transient fault defers ``m`` uncharged (:meth:`_defer`); any other
        failure makes ``m`` visible again later, until the redrive policy moves it (so does a
        terminal one whose move to the DLQ failed). ``finished``: ``fn`` completes the message
        (its success ends a transient condition; starting a chunk does not)."""
        try:
            result = fn(m)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if transient.is_transient(exc):
                self._defer(queue, m, reason)
                return None
            self.stats.failures += 1
            self.stats.errors.append(f"{queue.name} {m.message_id}: {reason}")
            if isinstance(exc, TerminalError):  # retrying cannot help: do not wait for the policy
                try:
                    queue.dead_letter(m, reason)
                except Exception:
                    _log.warning(
                        "dead-lettering failed; the message will be retried", exc_info=True,
                        extra={"worker": self.worker_id, "data": {
                            "queue": queue.name, "message_id": m.message_id, "reason": reason}},
                    )
                else:
                    _log.warning(
                        "message dead-lettered", exc_info=exc,
                        extra={"worker": self.worker_id, "data": {
                            "queue": queue.name, "message_id": m.message_id,
                            "receive_count": m.receive_count, "reason": reason}},
                    )
                    return None
            delay = self.lake.settings.queue.retry_delay * 2 ** max(0, m.receive_count - 1)
            delay = min(delay, float(self.lake.settings.queue.visibility_timeout))
            _log.warning(
                "message failed", exc_info=True,
                extra={"worker": self.worker_id, "data": {
                    "queue": queue.name, "message_id": m.message_id,
                    "receive_count": m.receive_count, "retry_in_s": delay}},
            )
            with contextlib.suppress(Exception):
                queue.change_visibility(m.receipt_handle, round(delay))
            return None
        if finished:
            self._progress(m)
        return result

    def _progress(self, m: Message) -> None:
        """A message went through: whatever transient fault there was is over."""
        self._transient_tries.pop(m.message_id, None)
        if self.stalled.value or self._recorded:
            self.stalled.value = 0.0
            self._recorded = False
            transient.clear_health(self.lake.settings.state_dir)

    def _defer(self, queue: Queue, m: Message, reason: str) -> None:
        """A transient fault: put ``m`` back uncharged after a jittered, growing backoff, and
        record the condition for ``lakeline status``."""
        tries = self._transient_tries.get(m.message_id, 0) + 1
        self._transient_tries[m.message_id] = tries
        q = self.lake.settings.queue
        delay = transient.backoff(tries, base=q.retry_delay, ceiling=q.transient_backoff_max)
        self.stats.transient_retries += 1
        self.stats.transient_error = f"{queue.name} {m.message_id}: {reason}"
        if not self.stalled.value:
            self.stalled.value = time.monotonic()
        _log.warning(
            "transient fault: message waits", exc_info=tries == 1,  # the traceback once, not every try
            extra={"worker": self.worker_id, "data": {
                "queue": queue.name, "message_id": m.message_id, "tries": tries, "retry_in_s": delay,
                "reason": reason}},
        )
        try:
            queue.defer(m, delay)
        except Exception:  # the queue itself is at fault: let the visibility timeout bring it back
            _log.warning("deferring failed; the message reappears after its visibility timeout",
                         exc_info=True, extra={"worker": self.worker_id, "data": {
                             "queue": queue.name, "message_id": m.message_id}})
        transient.record_waiting(self.lake.settings.state_dir, error=self.stats.transient_error,
                                 retry_in_s=delay)


def is_idle(lake: Lake) -> bool:
    """True when neither queue holds a visible, in-flight or delayed message."""
    return lake.ingest_queue.counts().total == 0 and lake.transform_queue.counts().total == 0


def gave_up(lake: Lake, stalled: Any) -> bool:
    """True when ``lakeline run`` should stop waiting on a transient fault: only transient
    faults for ``queue.transient_give_up_after`` seconds, and no message in flight (a worker
    still working on one may yet succeed)."""
    since = float(stalled.value)
    if not since or time.monotonic() - since < lake.settings.queue.transient_give_up_after:
        return False
    return all(q.counts().in_flight == 0 for q in (lake.ingest_queue, lake.transform_queue))


def waiting(lake: Lake) -> int:
    """Messages still queued (visible, in flight or delayed) in the ingest and transform queues."""
    return lake.ingest_queue.counts().total + lake.transform_queue.counts().total


# ---- runner lock and recovery ---------------------------------------------------------
@contextlib.contextmanager
def runner_lock(settings: Settings) -> Iterator[None]:
    """Hold the lake's exclusive runner lock, or raise UsageError naming the holder."""
    path = settings.state_dir / "runner.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fh: IO[str] = open(path, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise UsageError(
                f"another `lakeline run` or `serve` is active on {settings.home} ({holder}); "
                "wait for it or stop it"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()


def recover(lake: Lake) -> dict[str, int]:
    """Undo what killed workers left behind (call only while holding the runner lock).

    Local profile only: on AWS other workers (Lambdas) may be alive, their claims are real,
    and visibility timeouts and lock expiry do this job.
    """
    if not lake.is_local:
        return {"messages_released": 0, "claims_released": 0}
    released = 0
    for q in lake.queues().values():
        reset = getattr(q, "release_in_flight", None)
        if reset is not None:
            released += int(reset())
        # a new run is the operator's "try again": messages waiting on a transient fault go now
        again = getattr(q, "release_deferred", None)
        if again is not None:
            released += int(again())
    claims = 0
    for item in lake.state.query(IDEMPOTENCY):
        if item.data.get("status") == "IN_PROGRESS":
            lake.state.release(item.key)
            claims += 1
    work = lake.settings.home / "work"
    if work.exists():
        shutil.rmtree(work, ignore_errors=True)
    return {"messages_released": released, "claims_released": claims}


# ---- driving ----------------------------------------------------------------------------
def _threads(settings: Settings, workers: int) -> int:
    if settings.runner.duckdb_threads > 0:
        return settings.runner.duckdb_threads
    return max(1, (os.cpu_count() or 1) // workers)


#: prctl(2) option: the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``);
    if the parent is already gone (it died before this ran), exit now. Elsewhere the work loop's
    orphan check (:func:`orphaned`) does the job."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        try:
            libc = ctypes.CDLL(libc_name, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # not Linux: the orphan check remains
            pass
    if orphaned(parent_pid):
        os._exit(1)


def orphaned(parent_pid: int) -> bool:
    """True when the process that started this worker is gone (it was re-parented)."""
    return os.getppid() != parent_pid


def _worker_main(settings: Settings, extra: list[Pipeline], worker_id: str, forever: bool, stop: Any,
                 out: Any, stalled: Any = None, parent_pid: int = 0) -> None:
    if parent_pid:
        die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop

    def should_stop() -> bool:
        return bool(stop.is_set()) or (parent_pid != 0 and orphaned(parent_pid))

    log.setup()
    stats = work_loop(settings, worker_id=worker_id, forever=forever, should_stop=should_stop,
                      workers=settings.runner.workers, extra=extra, stalled=stalled)
    out.put(stats.to_dict())


def work_loop(
    settings: Settings, *, worker_id: str = "w0", forever: bool = False,
    should_stop: Callable[[], bool] = lambda: False, workers: int = 1,
    watch: bool = False, extra: list[Pipeline] | None = None, stalled: Any = None,
) -> RunStats:
    """Process messages until idle (or, with ``forever``, until ``should_stop()``); without
    ``forever`` also stop when only transient faults were met for
    ``queue.transient_give_up_after`` seconds (:func:`gave_up`).
    ``extra``: pipelines registered in the parent process (a spawned worker has none);
    ``stalled``: the transient clock shared with the other workers (:class:`Stalled`)."""
    lake = Lake.open(settings)
    reg = load(settings, extra).check()
    worker = Worker(lake, reg, threads=_threads(settings, workers), worker_id=worker_id, stalled=stalled)
    next_scan = 0.0
    jobs = Jobs(lake, reg) if watch else None
    bell = QueueBell(getattr(getattr(lake.ingest_queue, "db", None), "path", None))
    interval = settings.runner.watch_interval
    try:
        while not should_stop():
            if not forever and gave_up(lake, worker.stalled):
                break
            busy = worker.step()
            now = time.monotonic()
            # serve's tick (landing scan, jobs, after-run checks) waits while messages flow and
            # for a quiet moment after (no queue write for QueueBell.HOT), so a file landed now is
            # not held up behind it; a steady stream still gets it, at most one interval late
            quiet = not busy and not bell.hot()
            if jobs is not None and now >= next_scan and (quiet or now >= next_scan + interval):
                scan_landing(lake)
                jobs.fire_due()
                next_scan = time.monotonic() + interval
                continue
            if busy:
                continue
            if not forever and is_idle(lake):
                break
            wait = settings.runner.poll_interval
            if jobs is not None:
                wait = min(wait, max(QueueBell.RECHECK, next_scan - now))
            bell.wait(wait)  # a write to the queue (a put, a chunk message) ends it at once
    finally:
        bell.close()
        worker.close()
    return worker.stats


# ---- waking an idle work loop -------------------------------------------------------------
#: inotify(7) flags (linux/inotify.h)
_IN_MODIFY, _IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_CREATE, _IN_Q_OVERFLOW = 0x2, 0x8, 0x80, 0x100, 0x4000
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
#: struct inotify_event without its name: wd, mask, cookie, len
_INOTIFY_EVENT = struct.Struct("iIII")


class QueueBell:
    """Ends an idle work loop's wait as soon as the local queue database is written (``put``'s
    object-created event, a chunk message, a retry made visible by another process), instead
    of at the end of ``runner.poll_interval``.

    Linux inotify on the directory of ``queue.db`` (its WAL is created and removed), through
    libc: no dependency, no thread, and no CPU while nothing is written. Without a database
    path (the AWS profile), or where inotify is unavailable, :meth:`wait` simply sleeps.
    ``poll_interval`` stays the longest wait: a delayed message becomes visible without a
    write, and that is when the loop looks again.

    A write is seen when its bytes reach the WAL, a moment before the commit is visible to
    readers (after its fsync), so for :data:`HOT` seconds after a ring each wait lasts at most
    :data:`RECHECK` seconds: the loop looks again until the message shows."""

    #: seconds after a ring during which waits are short
    HOT = 0.25
    #: the longest wait while hot
    RECHECK = 0.005

    def __init__(self, db_path: Path | None) -> None:
        self.fd = -1
        self.name = b""
        self._hot_until = 0.0
        #: waits a write to the queue ended early
        self.rings = 0
        if db_path is None:
            return
        libc_name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(libc_name, use_errno=True) if libc_name else None
            fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)) if libc is not None else -1
        except (OSError, AttributeError):  # not Linux: sleep
            return
        if fd < 0:
            return
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        if libc is None or libc.inotify_add_watch(fd, os.fsencode(Path(db_path).parent), mask) < 0:
            os.close(fd)
            return
        self.fd = fd
        self.name = os.fsencode(Path(db_path).name)

    def hot(self) -> bool:
        """True within :data:`HOT` seconds of a ring (the queue was written to just now)."""
        return time.monotonic() < self._hot_until

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when a write to the queue database ended it."""
        if self.fd < 0:
            time.sleep(timeout)
            return False
        now = time.monotonic()
        deadline = now + (min(timeout, self.RECHECK) if now < self._hot_until else timeout)
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while (remaining := deadline - time.monotonic()) > 0:
            if poller.poll(remaining * 1000) and self._drain():
                self.rings += 1
                self._hot_until = time.monotonic() + self.HOT
                return True
        return False

    def _drain(self) -> bool:
        """Read every pending event; True when one is about the queue database (or lost events)."""
        hit = False
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return hit
            offset = 0
            while offset + _INOTIFY_EVENT.size <= len(buf):
                _, mask, _, size = _INOTIFY_EVENT.unpack_from(buf, offset)
                offset += _INOTIFY_EVENT.size
                name = buf[offset:offset + size].rstrip(b"\0")
                offset += size
                hit = hit or bool(mask & _IN_Q_OVERFLOW) or name.startswith(self.name)

    def close(self) -> None:
        """Release the inotify descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def run(
    settings: Settings, *, workers: int | None = None, forever: bool = False,
    on_tick: Callable[[Lake], None] | None = None, stop_flag: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Run workers over the lake until idle (``lakeline run``) or until stopped (``serve``).

    Returns the summed counters, the job pipelines' reports (``batch_runs``), the quality
    reports of the streaming pipelines (``quality``), recovery figures and elapsed seconds.
    """
    n = workers or settings.runner.workers
    started = time.monotonic()
    with runner_lock(settings):
        lake = Lake.open(settings)
        reg = load(settings, registered()).check()
        recovered = recover(lake)
        dead_before = dead_letters(lake)
        announced = scan_landing(lake)
        stats = RunStats()
        should_stop = stop_flag or (lambda: False)
        if n == 1 and on_tick is None:
            stats = work_loop(settings, forever=forever, should_stop=should_stop, watch=forever,
                              extra=registered())
        else:
            stats = _run_pool(settings, lake, reg, n, forever, on_tick, should_stop)
        jobs = Jobs(lake, reg)
        batch = [] if forever else [r.to_dict() for r in jobs.run_pipelines()]
        quality = [] if forever else [r.to_dict() for r in jobs.after_run()]
        models = [] if forever else jobs.run_models()
        dead = max(0, dead_letters(lake) - dead_before)
        left = waiting(lake)
        if left and stats.transient_error:
            transient.record_waiting(settings.state_dir, error=stats.transient_error, retry_in_s=0,
                                     waiting=left)
        elif not left:
            transient.clear_health(settings.state_dir)
    summary = stats.to_dict()
    summary["dead_lettered"] = dead
    summary["waiting"] = left
    summary["batch_runs"] = batch
    summary["quality"] = quality
    summary["models"] = models
    summary.update(recovered)
    summary["announced"] = announced
    summary["workers"] = n
    summary["elapsed_s"] = round(time.monotonic() - started, 3)
    return summary


def process_queues(lake: Lake) -> dict[str, Any]:
    """Load what landed (the ops workflow's ``lakeline-process``): the runner's work loop drives
    the queues until idle, holding the runner lock (recovering first, as ``lakeline run`` does).

    Beside another process's ``lakeline run`` / ``serve`` nothing is driven here — that runner
    loads the objects — and the result says so (``processed: false`` and the lock holder).
    Inside this process's own ``serve`` (a ``[[rules]]`` workflow) serve's loop waits for the
    workflow, so the work loop runs here, as one more worker."""
    settings = lake.settings
    recovered: dict[str, int] = {}
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(runner_lock(settings))
        except UsageError as busy:
            if not _locked_here(settings):
                return {"processed": False, "reason": f"{busy}; that runner loads the replayed objects"}
        else:
            recovered = recover(lake)
        announced = scan_landing(lake)
        stats = work_loop(settings, extra=registered())
    return {"processed": True, **stats.to_dict(), **recovered, "announced": announced}


def _locked_here(settings: Settings) -> bool:
    """True when this process holds the runner lock (runner_lock writes ``pid <pid>`` in it)."""
    path = settings.state_dir / "runner.lock"
    try:
        return path.read_text().strip() == f"pid {os.getpid()}"
    except OSError:
        return False


def dead_letters(lake: Lake) -> int:
    """Messages in the ingest and transform DLQs now (the difference over a run is how many
    that run dead-lettered)."""
    return sum(q.dlq.counts().total for q in (lake.ingest_queue, lake.transform_queue) if q.dlq is not None)


def _has_models(home: Path) -> bool:
    """Whether ``home`` has SQL model files (``HOME/models/*.sql``, as
    :func:`lakeline.models.spec.model_files` lists them) — without importing the models
    package and sqlglot, which a lake without models never needs."""
    folder = home / "models"
    return folder.is_dir() and any(p.is_file() for p in folder.glob("*.sql"))


class Jobs:
    """The pipelines' own work around the queues: each job pipeline's ``run``, each streaming
    pipeline's checks after a run, schedules and the ``[[rules]]`` workflows of ``serve``."""

    def __init__(self, lake: Lake, reg: Registry, *, since: datetime | None = None) -> None:
        self.lake = lake
        self.reg = reg
        self.schedules = {s.name: s for p in reg for s in p.schedules(lake.settings)}
        self.scheduler = (Scheduler({n: parse(s.expression) for n, s in self.schedules.items()}, lake.state,
                                    since=since) if self.schedules else None)
        self.rules = RuleRunner(lake, lake_tasks(lake, reg, drive=process_queues),
                                lambda name: definition(reg, name)) \
            if lake.settings.rules else None

    def run_pipelines(self) -> list[Report]:
        """Run every pipeline's pending work (one call each); their reports."""
        reports: list[Report] = []
        for p in self.reg:
            reports.extend(p.run(self.lake))
        return reports

    def after_run(self) -> list[Report]:
        """Every pipeline's checks after the queues drained (streaming: quality rules)."""
        return [r for p in self.reg if (r := p.after_run(self.lake)) is not None]

    def run_models(self) -> list[dict[str, Any]]:
        """Materialise the SQL models whose inputs changed (``HOME/models/*.sql``): one dict per
        model that ran or failed (up-to-date ones are left out); a model file with a problem is
        reported as a failure of the models step, not of the run's data."""
        if not _has_models(self.lake.settings.home):
            return []
        from lakeline.models.run import UP_TO_DATE, run_models  # heavy: sqlglot, only for a lake with models

        specs = [t for _, t in self.reg.tables()]
        try:
            results = run_models(self.lake, specs)
        except ConfigError as exc:
            return [{"name": None, "status": "FAILED", "error": str(exc), "summary": f"models: {exc}"}]
        return [dict(r.to_dict(), summary=r.summary()) for r in results
                if r.status != "SKIPPED" or r.reason != UP_TO_DATE]

    def fire_due(self) -> None:
        """`serve`'s periodic work: pipeline jobs that landings triggered, checks, models, rules,
        then due schedules. A failure is logged and retried next tick; it never stops `serve`."""
        for name, step in (("pipeline jobs", self.run_pipelines), ("quality check", self.after_run),
                           ("models", self.run_models)):
            try:
                step()
            except Exception:  # a failing job must not stop serve; it is retried next tick
                _log.warning("%s failed", name, exc_info=True)
        if self.rules is not None:
            try:
                self.rules.tick()
            except Exception:  # a failing rule must not stop serve
                _log.warning("workflow rule failed", exc_info=True)
        for r in self.fire_schedules(datetime.now(UTC)):
            (_log.info if r.status == "SUCCEEDED" else _log.warning)(
                "scheduled job: %s", r.summary, extra={"pipeline": r.pipeline, "data": r.to_dict()})

    def fire_schedules(self, now: datetime) -> list[Report]:
        """Run the scheduled jobs due at ``now`` (each tick once, across processes); their reports.
        A failing job is logged; the others still run."""
        reports: list[Report] = []
        for name in self.scheduler.due(now) if self.scheduler is not None else []:
            try:
                reports.extend(self.schedules[name].run(self.lake))
            except Exception:  # a failing scheduled job must not stop serve
                _log.warning("scheduled job failed", exc_info=True, extra={"data": {"job": name}})
        return reports


def _run_pool(
    settings: Settings, lake: Lake, reg: Registry, n: int, forever: bool,
    on_tick: Callable[[Lake], None] | None, should_stop: Callable[[], bool],
) -> RunStats:
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    out = ctx.Queue()
    stalled = ctx.Value("d", 0.0, lock=False)  # one float, written whole: no lock needed
    extra = registered()
    procs = [
        ctx.Process(target=_worker_main, args=(settings, extra, f"w{i}", forever, stop, out, stalled,
                                               os.getpid()), daemon=True)
        for i in range(n)
    ]
    for p in procs:
        p.start()
    next_scan = 0.0
    jobs = Jobs(lake, reg) if forever else None
    try:
        while any(p.is_alive() for p in procs):
            if should_stop():
                stop.set()
            if jobs is not None and time.monotonic() >= next_scan:
                scan_landing(lake)
                jobs.fire_due()
                next_scan = time.monotonic() + settings.runner.watch_interval
            if on_tick is not None:
                on_tick(lake)
            for p in procs:
                p.join(timeout=0.2 / n)
    except KeyboardInterrupt:
        stop.set()  # workers finish their in-flight batch, then exit
        for p in procs:
            p.join()
    stats = RunStats()
    while True:
        try:
            stats.add(RunStats(**out.get(timeout=0.5)))
        except Exception:  # queue.Empty once every worker's counters are read
            break
    return stats
