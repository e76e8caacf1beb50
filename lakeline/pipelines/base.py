"""The ``Pipeline`` protocol: everything generic code may ask of a pipeline.

A pipeline is one object. The runner, ingest, the CLI, ``deploy sam`` and the workflow task
list only talk to pipelines through this class; none of them names a pipeline. Two kinds:

* **streaming** pipelines return a :class:`~lakeline.stages.spec.StreamSpec` from
  :meth:`Pipeline.stream`: every landed object is cut into chunks by ingest and transformed
  into their silver tables (declared pipelines and ``shipments``);
* **job** pipelines leave landed objects where they are (ingest records the landing and calls
  :meth:`Pipeline.on_landed`) and do their work in :meth:`Pipeline.run`, which ``lakeline
  run`` calls once per run (``transactions``, ``retail``, ``carbon``, ``totesys``).

Write your own by subclassing :class:`Pipeline` and registering it
(:func:`lakeline.register_pipeline`, or the entry-point group ``lakeline.pipelines``)::

    class Orders(Pipeline):
        name = "orders"

        def run(self, lake):
            ...
            return [Report(self.name, "SUCCEEDED", "orders: 120 rows into gold.orders")]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lakeline.config import Settings, pipeline_settings
from lakeline.dq.rules import Ruleset
from lakeline.errors import ConfigError
from lakeline.lake import Lake
from lakeline.stages.spec import StreamSpec
from lakeline.tables.schema import NAME, TableSpec
from lakeline.workflow.engine import TaskRegistry

if TYPE_CHECKING:
    import click

Status = Literal["SUCCEEDED", "FAILED", "SKIPPED"]


@dataclass
class Report:
    """What one unit of a pipeline's work did: ``status``, a one-line ``summary`` a person
    reads, and ``data`` (pipeline-specific figures, JSON-ready)."""

    pipeline: str
    status: Status
    summary: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when the work failed."""
        return self.status == "FAILED"

    def to_dict(self) -> dict[str, Any]:
        """``data`` with ``pipeline``, ``status`` and ``summary`` (one shape for every pipeline)."""
        return {**self.data, "pipeline": self.pipeline, "status": self.status, "summary": self.summary}


@dataclass
class RunEntry:
    """One run in ``lakeline runs``, in one shape for every pipeline; ``detail`` holds the
    pipeline's own fields (retail's run-log item: ``pk``, ``sk``, ``run_id``, ``dedupe``)."""

    pipeline: str
    kind: str  # "object" (one landed object), "batch" (a promoted run), "job" (a pipeline's unit)
    run_id: str
    status: str
    started_at: str | None = None
    finished_at: str | None = None
    key: str | None = None
    records: int | None = None
    loaded: int | None = None
    rejected: int | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain JSON types."""
        return {"pipeline": self.pipeline, "kind": self.kind, "run_id": self.run_id, "status": self.status,
                "started_at": self.started_at, "finished_at": self.finished_at, "key": self.key,
                "records": self.records, "loaded": self.loaded, "rejected": self.rejected,
                "error": self.error, "detail": self.detail}


@dataclass
class Failure:
    """Failed work waiting for a person: what (``what``: a file key, a batch id), why, and the
    command that shows more or finishes it."""

    pipeline: str
    what: str
    error: str
    command: str

    def to_dict(self) -> dict[str, Any]:
        """The failure as plain JSON types."""
        return {"pipeline": self.pipeline, "what": self.what, "error": self.error, "command": self.command}


@dataclass(frozen=True)
class TaskSpec:
    """A step a workflow invokes (a Lambda function on AWS, bound by name locally).

    ``name`` is the ``FunctionName`` the ASL definitions use (``lakeline-carbon-split``);
    ``run(lake, payload)`` does the work. The grants give the deployed function's role exactly
    the zones and queues the step touches (least privilege)."""

    name: str
    description: str
    run: Callable[[Lake, dict[str, Any]], Any]
    timeout: int = 300
    memory: int = 512
    s3_read: tuple[str, ...] = ()
    s3_write: tuple[str, ...] = ()
    sends: tuple[str, ...] = ()
    state_write: bool = True


@dataclass(frozen=True)
class Schedule:
    """A job a pipeline runs on a schedule (an EventBridge expression: ``cron(15 1 * * ? *)``,
    ``rate(1 day)``) under ``lakeline serve``, and as a scheduled rule on AWS."""

    name: str
    expression: str
    run: Callable[[Lake], list[Report]]


@dataclass(frozen=True)
class Trigger:
    """What starts a job pipeline's work on AWS when an object is created (locally ``lakeline
    run`` and ``serve`` find the work themselves).

    ``zone`` and ``prefix`` say where the objects arrive. In the landing zone the ingest function
    (which every landed object reaches through the bucket's one S3 notification) first records
    the landing — once per object version, so a redelivered event starts nothing twice — and
    then starts the work. In another zone an S3 notification on that prefix invokes the
    pipeline's job function directly. ``workflow`` names a state machine the pipeline ships,
    started once per object with ``{"key": <key>}`` merged into ``input`` (the shape the local
    engine gets); without one the pipeline's job function runs :meth:`Pipeline.run`."""

    prefix: str
    zone: str = "landing"
    workflow: str | None = None
    input: Mapping[str, Any] = field(default_factory=dict)
    #: one execution at a time, and none when :meth:`Pipeline.pending` is empty: the landings
    #: queue on the pipeline's FIFO job queue, whose job function starts the workflow and waits
    #: for it (a run that takes every pending file: several files landed together are one run)
    serial: bool = False


@dataclass(frozen=True)
class JobFunction:
    """The AWS Lambda function that runs a job pipeline's :meth:`Pipeline.run` (on a trigger)
    and its schedules: its size and exactly what its role may touch (least privilege)."""

    memory: int = 2048
    timeout: int = 900
    s3_read: tuple[str, ...] = ("landing", "raw", "silver", "gold")
    s3_write: tuple[str, ...] = ("landing", "silver", "gold", "error", "tmp")
    sends: tuple[str, ...] = ()
    state_write: bool = True
    #: may write the lake's parameters (watermarks, packet ids), not only read them
    params_write: bool = False
    #: what the job needs beyond the zip package (pip requirements: pyiceberg, SQLAlchemy…):
    #: the function is then a container image with them (the zip stays under Lambda's limit)
    requirements: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenOptions:
    """Options of ``lakeline gen``; each generator reads the ones it knows."""

    out: Path | None = None
    count: int | None = None
    seed: int = 0
    fmt: str = "jsonl"
    days: int = 7
    dirty_rate: float = 0.0
    first_id: int = 1
    db: str = "totesys.db"
    scale: int = 1000
    mutate: bool = False


@dataclass(frozen=True)
class Generator:
    """A pipeline's fake-data generator: ``targets`` are what ``lakeline gen TARGET`` accepts;
    ``generate(target, options)`` writes the data and returns a line saying what it wrote."""

    targets: tuple[str, ...]
    generate: Callable[[str, GenOptions], str]
    help: str = ""


class Pipeline:
    """Base class of every pipeline (see the module docstring). Override what applies."""

    #: the pipeline's name: its landing prefix (``<name>/``), its ``[pipelines.<name>]``
    #: settings and the name reports and run-log entries carry.
    name: str = ""
    #: one line saying what the pipeline does (``lakeline pipeline list``).
    description: str = ""
    #: the dataclass of the pipeline's settings (``[pipelines.<name>]``), if it has any.
    settings_class: ClassVar[type[Any] | None] = None
    #: where it comes from: ``builtin``, a pipeline file's path, ``entry point …``, ``registered``.
    origin: str = "builtin"

    # ---- identity and settings ------------------------------------------------------------
    def settings(self, settings: Settings) -> Any:
        """The pipeline's settings from ``[pipelines.<name>]`` (None without a settings class)."""
        if self.settings_class is None:
            return None
        found = pipeline_settings(settings, self.name, self.settings_class)
        self.check_settings(found, settings)
        return found

    def check_settings(self, values: Any, settings: Settings) -> None:
        """Validate settings values (:func:`lakeline.config.check` names where a value was set)."""

    @property
    def landing_prefix(self) -> str | None:
        """The landing prefix whose objects belong to this pipeline (None: it lands nothing)."""
        return f"{self.name}/"

    # ---- data side --------------------------------------------------------------------------
    def stream(self, settings: Settings) -> StreamSpec | None:
        """The stream spec of a streaming pipeline; None for a job pipeline."""
        return None

    def tables(self, settings: Settings) -> list[TableSpec]:
        """The tables the pipeline writes (name, layout, zone, fields when known)."""
        return []

    # ---- landing ------------------------------------------------------------------------------
    def landing_key(self, path: Path, key: str | None, today: str | None = None) -> str:
        """Where ``lakeline put FILE`` lands ``path``: ``key`` under the landing prefix, else
        ``<prefix><UTC date>/<file name>``."""
        prefix = self.landing_prefix or f"{self.name}/"
        if key:
            return key if key.startswith(prefix) else prefix + key
        day = today or datetime.now(UTC).strftime("%Y-%m-%d")
        return f"{prefix}{day}/{path.name}"

    def land(self, lake: Lake, path: Path, key: str | None = None) -> dict[str, Any]:
        """Store the local file ``path`` in the landing zone (``lakeline put``); the caller
        announces it. Returns ``{key, size, etag, duplicate}``."""
        final = self.landing_key(path, key)
        info = lake.store.put_file("landing", final, path)
        return {"key": final, "size": info.size, "etag": info.etag, "duplicate": None}

    def on_landed(self, lake: Lake, key: str, etag: str, size: int) -> None:
        """A job pipeline's object landed (called once per object version by ingest)."""

    # ---- work -------------------------------------------------------------------------------
    def pending(self, lake: Lake) -> list[str]:
        """What the next :meth:`run` would process (object keys, packets, …)."""
        return []

    def run(self, lake: Lake) -> list[Report]:
        """Process what is pending; one report per unit of work (none when nothing was pending)."""
        return []

    def after_run(self, lake: Lake) -> Report | None:
        """Checks after a run drained the queues (streaming pipelines: the quality rules on the
        partitions written since the last check)."""
        return None

    def schedules(self, settings: Settings) -> list[Schedule]:
        """Jobs to run on a schedule."""
        return []

    def status(self, lake: Lake) -> dict[str, Any]:
        """What ``lakeline status`` shows for this pipeline: ``{"notes": [lines], …}``."""
        return {}

    def run_log(self, lake: Lake, limit: int) -> list[RunEntry]:
        """The pipeline's own runs, newest first, at most ``limit`` (``lakeline runs``): the
        units of work its :meth:`run` does (a retail batch, a carbon workflow per file). The
        object run log of streaming pipelines is read by ``runs`` itself."""
        return []

    def failures(self, lake: Lake) -> list[Failure]:
        """Work of this pipeline that failed and waits for a person (a failed batch, a carbon
        file whose workflow failed): shown first by ``lakeline status``."""
        return []

    def rulesets(self) -> Mapping[str, Ruleset]:
        """The pipeline's own quality rules by table name (``""``: the whole pipeline);
        ``[pipelines.<name>.dq…] rules`` in the config replace them."""
        return {}

    # ---- AWS and workflows ------------------------------------------------------------------
    def tasks(self) -> list[TaskSpec]:
        """Workflow steps (Lambda functions on AWS) this pipeline provides."""
        return []

    def workflows(self) -> Mapping[str, dict[str, Any]]:
        """ASL definitions this pipeline ships, by name."""
        return {}

    def triggers(self, settings: Settings) -> list[Trigger]:
        """What starts the pipeline's work on AWS when objects arrive. Default: a job pipeline
        with a landing prefix runs its job function for each landed object; a streaming
        pipeline needs none (ingest chunks its objects)."""
        if self.stream(settings) is not None or not self.landing_prefix:
            return []
        return [Trigger(self.landing_prefix)]

    def job_function(self) -> JobFunction:
        """The AWS function running :meth:`run` and the schedules (deployed when a trigger
        without a workflow or a schedule needs it)."""
        return JobFunction()

    # ---- tools ------------------------------------------------------------------------------
    def generator(self) -> Generator | None:
        """The fake-data generator, if the pipeline has one."""
        return None

    def commands(self) -> list[click.Command]:
        """Extra ``lakeline`` commands of this pipeline (``extract`` for totesys)."""
        return []

    def describe(self, settings: Settings) -> dict[str, Any]:
        """What ``lakeline pipeline show`` prints."""
        stream = self.stream(settings)
        return {
            "name": self.name, "kind": "stream" if stream is not None else "job",
            "description": self.description, "origin": self.origin,
            "landing_prefix": self.landing_prefix,
            "tables": [{"name": t.name, "layout": t.layout, "zone": t.zone,
                        "fields": [{"name": f.name, "type": f.type, "required": f.required}
                                   for f in t.fields]} for t in self.tables(settings)],
            "tasks": [t.name for t in self.tasks()],
            "schedules": [{"name": s.name, "expression": s.expression} for s in self.schedules(settings)],
            "generator": list(g.targets) if (g := self.generator()) is not None else [],
        }


def check_name(name: str, where: str) -> str:
    """``name`` if it can name a pipeline or a table (``[a-z_][a-z0-9_]*``, no ``__``)."""
    if not NAME.match(name) or "__" in name:
        raise ConfigError(f"{where}: {name!r} is not a valid name (lower-case letters, digits and "
                          "single underscores, starting with a letter or underscore)")
    return name


def task_registry(lake: Lake, specs: list[TaskSpec]) -> TaskRegistry:
    """A workflow task registry binding each of ``specs`` to ``lake``."""
    reg = TaskRegistry()
    for spec in specs:
        reg.register(spec.name, functools.partial(spec.run, lake))
    return reg
