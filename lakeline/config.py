"""Settings: ``lakeline.toml`` < ``LAKELINE__SECTION__KEY`` environment < explicit arguments.

The home directory holds ``lakeline.toml`` and, for the local backend, the zones and state::

    <home>/
      lakeline.toml
      zones/<landing|raw|error|silver|gold|tmp>/...   object store (one directory per zone)
      state/queue.db, state/state.db                 queues; idempotency, run log, params, events
      outbox/notifications.jsonl                      notifier outbox

``load_settings`` reads the file (if any), applies environment overrides, then the explicit
``overrides`` mapping (``{"queue.visibility_timeout": 60}``), and validates every value's type.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from lakeline import envvars
from lakeline.errors import ConfigError

CONFIG_FILE = "lakeline.toml"
ZONES = ("landing", "raw", "error", "silver", "gold", "tmp")
#: the values of ``sql.dialect``
SQL_DIALECTS = ("duckdb", "athena")
T = TypeVar("T")


@dataclass(frozen=True)
class LakeSettings:
    """Where the lake lives and what its local "buckets" are called."""

    #: the lake's name: prefixes its AWS resources (buckets `<name>-<zone>`, tables, queues) and names its
    #: OpenLineage datasets
    name: str = "lakeline"
    #: where the ports live: `local` (directories, SQLite, DuckDB) or `aws` (S3, SQS, DynamoDB, SSM, SNS,
    #: Glue)
    profile: str = "local"


@dataclass(frozen=True)
class IngestSettings:
    """Ingest stage: chunking and idempotency."""

    #: ingest cuts a landed file into chunks of about this many bytes, at record boundaries; one transform
    #: message per chunk
    chunk_bytes: int = 32 * 1024 * 1024
    #: how long ingest and publish remember work they finished (an object's key + etag, a chunk), so a
    #: duplicate event is skipped
    idempotency_ttl_days: int = 30
    #: how long a claim on an object (ingest) or a chunk (publish) holds before another worker may take it
    #: over (a crashed worker's claim expires)
    lock_timeout_seconds: int = 900


@dataclass(frozen=True)
class TransformSettings:
    """Transform stage. ``fast_path``: parse clean JSON-lines and CSV chunks with DuckDB's own
    readers (about twice as fast); a chunk it cannot prove identical to the exact path's result
    takes the exact per-line path anyway (see lakeline.stages.fastpath). ``false`` always takes
    the exact path."""

    #: parse clean JSON-lines and CSV chunks with DuckDB's readers, kept only when provably the exact path's
    #: result; `false`: always the exact per-line path
    fast_path: bool = True


@dataclass(frozen=True)
class QueueSettings:
    """SQS semantics of the local queues (defaults match specs §3)."""

    #: seconds a received message stays invisible to other workers (SQS VisibilityTimeout)
    visibility_timeout: int = 180
    #: seconds a message is kept before the queue drops it (SQS MessageRetentionPeriod: 4 days)
    retention_seconds: int = 4 * 24 * 3600
    #: receives before a message goes to the DLQ (SQS redrive policy maxReceiveCount)
    max_receive_count: int = 5
    #: messages a worker receives at once (SQS MaxNumberOfMessages, the Lambda batch size)
    batch_size: int = 10
    #: seconds before a failed message reappears, doubling with each try: `delay * 2**(n-1)`
    retry_delay: float = 1.0  # seconds; a failed message reappears after delay * 2**(n-1)
    #: a transient fault (full disk, read-only zone, locked database, throttling) is not the
    #: message's fault: it waits, uncharged, up to this many seconds between tries (1..900)
    transient_backoff_max: float = 300.0
    #: `lakeline run` stops retrying after this many seconds without progress and exits 1
    #: naming the waiting messages (`serve` never gives up)
    transient_give_up_after: float = 600.0

    def __post_init__(self) -> None:
        # checked here, with the fields they guard, so a bad value is refused wherever it came from
        if not 1 <= self.transient_backoff_max <= 900:
            raise ConfigError("queue.transient_backoff_max must be 1..900 seconds, "
                              f"got {self.transient_backoff_max!r}")
        if not 0 <= self.transient_give_up_after <= 86400:
            raise ConfigError("queue.transient_give_up_after must be 0..86400 seconds, "
                              f"got {self.transient_give_up_after!r}")


@dataclass(frozen=True)
class RunnerSettings:
    """The local worker pool."""

    #: worker processes of `run` and `serve` (`--workers` overrides it)
    workers: int = 1
    #: seconds an idle worker waits before it polls the queues again
    poll_interval: float = 0.5
    #: seconds between `serve`'s scans of the landing zone (a `put` wakes it at once locally)
    watch_interval: float = 2.0
    #: a landing file must be this old before the watcher takes it (a file still being written is left alone)
    settle_seconds: float = 1.0  # a landing file must be this old before the watcher takes it
    #: DuckDB threads per worker process; 0 divides all cores among the workers
    duckdb_threads: int = 0  # 0 = all cores divided among the workers


@dataclass(frozen=True)
class NotifySettings:
    """Notifier: structured log + outbox file always; SMTP when ``smtp_host`` is set."""

    #: SMTP server for notifications (empty: the outbox file and the structured log only)
    smtp_host: str = ""
    #: SMTP port (587: STARTTLS)
    smtp_port: int = 587
    #: SMTP login (its password comes from the environment variable `LAKELINE_SMTP_PASSWORD`, never this file)
    smtp_user: str = ""
    #: the From address of notification mails
    smtp_from: str = ""
    #: the administrators' addresses, comma-separated
    smtp_to: str = ""


@dataclass(frozen=True)
class QualitySettings:
    """``after_run``: after `run` (and on every `serve` tick) each streaming pipeline's quality
    rules (the specs §3 expectations for shipments) run on every partition written since the
    last check; a failure writes the quarantine marker and notifies."""

    #: run each streaming pipeline's quality rules on the partitions written, after every `run` and `serve`
    #: tick
    after_run: bool = True


@dataclass(frozen=True)
class SqlSettings:
    """``lakeline sql``: ``max_bytes`` refuses queries that would scan more (0 = no limit),
    like an Athena workgroup's bytes-scanned cutoff. ``dialect``: the SQL that ``sql`` and
    ``explain`` read, ``duckdb`` or ``athena`` (Athena / Trino SQL, translated to DuckDB)."""

    #: refuse a query that would scan more than this many bytes, before it runs (0: no limit)
    max_bytes: int = 0
    #: the SQL `sql` and `explain` read: `duckdb` or `athena` (Trino SQL, translated to DuckDB)
    dialect: str = "duckdb"


@dataclass(frozen=True)
class LineageSettings:
    """The lineage ledger's optional OpenLineage export: run events as JSON lines appended to
    ``openlineage_file`` (relative to the home) and/or POSTed to ``openlineage_url``
    (empty: off). ``namespace`` names the lake's datasets and jobs (empty: ``lake.name``)."""

    #: POST OpenLineage run events here (empty: off)
    openlineage_url: str = ""
    #: append OpenLineage run events to this JSON-lines file, relative to the home (empty: off)
    openlineage_file: str = ""
    #: the OpenLineage namespace of the lake's datasets and jobs (empty: `lake.name`)
    namespace: str = ""
    #: timeout of an OpenLineage POST
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class AwsSettings:
    """The ``aws`` profile: where each port lives on AWS (nothing is created at runtime).

    ``zone_<zone>`` is ``s3://bucket/prefix/`` (empty: ``s3://<lake.name>-<zone>/``).
    ``endpoint_url`` points every client at another endpoint (moto, LocalStack, MinIO).
    """

    #: the AWS region of every client
    region: str = "us-east-1"
    #: send every AWS client to this endpoint instead (moto, LocalStack, MinIO); empty: AWS
    endpoint_url: str = ""
    #: `s3://bucket/prefix/` of the landing zone (empty: `s3://<lake.name>-landing/`)
    zone_landing: str = ""
    #: `s3://bucket/prefix/` of the raw zone (empty: `s3://<lake.name>-raw/`)
    zone_raw: str = ""
    #: `s3://bucket/prefix/` of the error zone (empty: `s3://<lake.name>-error/`)
    zone_error: str = ""
    #: `s3://bucket/prefix/` of the silver zone (empty: `s3://<lake.name>-silver/`)
    zone_silver: str = ""
    #: `s3://bucket/prefix/` of the gold zone (empty: `s3://<lake.name>-gold/`)
    zone_gold: str = ""
    #: `s3://bucket/prefix/` of the tmp zone (empty: `s3://<lake.name>-tmp/`)
    zone_tmp: str = ""
    #: URL of the SQS queue of object events (ingest)
    ingest_queue_url: str = ""
    #: URL of the ingest queue's dead-letter queue
    ingest_dlq_url: str = ""
    #: URL of the SQS queue of chunk messages (transform)
    transform_queue_url: str = ""
    #: URL of the transform queue's dead-letter queue
    transform_dlq_url: str = ""
    #: DynamoDB table of the state store (idempotency, run log, workflow executions)
    state_table: str = "lakeline-state"
    #: DynamoDB table of the lineage ledger (empty: `<lake.name>-lineage`)
    lineage_table: str = ""
    #: SNS topic notifications are published to (empty: none)
    topic_arn: str = ""
    max_attempts: int = 10  # botocore standard retry mode: throttling / 5xx are retried
    athena_workgroup: str = ""  # empty: the lake name (the workgroup `deploy sam` creates)
    glue_database: str = ""  # empty: the lake name with "-" as "_" (the database `deploy sam` creates)

    def workgroup(self, lake_name: str) -> str:
        """The Athena workgroup `sql --engine athena` runs in."""
        return self.athena_workgroup or lake_name

    def database(self, lake_name: str) -> str:
        """The Glue database Athena queries name tables in."""
        return self.glue_database or lake_name.replace("-", "_")

    def zone_uri(self, zone: str, lake_name: str) -> str:
        """``s3://bucket/prefix/`` of a zone (always ending in ``/`` unless just a bucket)."""
        uri: str = getattr(self, f"zone_{zone}") or f"s3://{lake_name}-{zone}/"
        if not uri.startswith("s3://"):
            raise ConfigError(f"aws.zone_{zone} must be an s3:// URI, got {uri!r}")
        return uri


class FrozenDict(dict[str, Any]):
    """A read-only dict that still pickles (``run --workers N`` sends settings to spawned
    processes; ``MappingProxyType`` cannot be pickled)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("settings are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self)))


@dataclass(frozen=True)
class Settings:
    """All settings of one lake."""

    home: Path
    lake: LakeSettings = field(default_factory=LakeSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    transform: TransformSettings = field(default_factory=TransformSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    aws: AwsSettings = field(default_factory=AwsSettings)
    sql: SqlSettings = field(default_factory=SqlSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    lineage: LineageSettings = field(default_factory=LineageSettings)
    #: ``[[rules]]`` tables: workflows started by `serve` (see lakeline.workflow.rules).
    rules: tuple[dict[str, Any], ...] = ()
    #: the raw ``[pipelines]`` section (read-only): ``[pipelines.<name>]`` settings of each
    #: pipeline (read by :func:`pipeline_settings`) and ``[pipelines.<p>.dq]`` rulesets (lakeline.dq).
    pipelines: Mapping[str, Any] = field(default_factory=lambda: FrozenDict())
    #: where each ``pipelines.<name>.<key>`` was set (a file path, an environment variable).
    origins: Mapping[str, str] = field(default_factory=lambda: FrozenDict())

    @property
    def zones_dir(self) -> Path:
        return self.home / "zones"

    @property
    def state_dir(self) -> Path:
        return self.home / "state"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"


_SECTIONS: dict[str, type[Any]] = {
    "lake": LakeSettings,
    "ingest": IngestSettings,
    "transform": TransformSettings,
    "queue": QueueSettings,
    "runner": RunnerSettings,
    "notify": NotifySettings,
    "aws": AwsSettings,
    "sql": SqlSettings,
    "quality": QualitySettings,
    "lineage": LineageSettings,
}


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    """The lake home: the argument, else ``$LAKELINE_HOME``, else the current directory."""
    chosen = home if home is not None else os.environ.get(envvars.HOME) or "."
    return Path(chosen).expanduser().resolve()


#: where a value comes from as text (an environment variable, a command-line flag): such a
#: value is parsed into the field's type; a value from ``lakeline.toml`` already has a TOML
#: type and must have the field's own.
_TEXT_ORIGINS = ("environment", "command line")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _field_types(cls: type[Any]) -> dict[str, type[Any]]:
    """The declared type of each field of the settings dataclass ``cls`` (``bool``, ``int``,
    ``float`` or ``str``; another annotation falls back to the type of the default)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, type[Any]] = {}
    for f in dataclasses.fields(cls):
        hint = hints.get(f.name)
        out[f.name] = hint if hint in (bool, int, float, str) else type(f.default)
    return out


def _coerce(section: str, key: str, value: Any, target: type[Any], origin: str) -> Any:
    """``value`` as ``target``, strictly: a TOML value must already have the type (a bool is
    not an int, a string is not a number; an int is accepted as a float); text from the
    environment or the command line is parsed. Numbers must be finite and not negative (every
    numeric setting is a size, a count or a duration)."""
    as_text = isinstance(value, str) and origin.startswith(_TEXT_ORIGINS) and target is not str
    name = f"{section}.{key}"
    try:
        if as_text:
            value = _parse_text(value.strip(), target)
        ok = (isinstance(value, target) and (target is bool or not isinstance(value, bool))) or (
            target is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise ValueError(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: {name} must be {target.__name__}, got {value!r}") from None
    if target is float and not math.isfinite(value):
        raise ConfigError(f"{origin}: {name} must be a finite number, got {value!r}")
    if target in (int, float) and value < 0:
        raise ConfigError(f"{origin}: {name} must be >= 0, got {value!r}")
    return float(value) if target is float else value


def _parse_text(text: str, target: type[Any]) -> Any:
    if target is bool:
        low = text.lower()
        if low not in _TRUE | _FALSE:
            raise ValueError(text)
        return low in _TRUE
    return target(text)


def load_settings(
    home: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load settings with precedence file < environment < ``overrides``.

    Pipeline settings live in ``[pipelines.<name>]`` (environment
    ``LAKELINE__PIPELINES__<NAME>__<KEY>``, override ``pipelines.<name>.<key>``); they are
    kept raw here and read by their pipeline (:func:`pipeline_settings`)."""
    root = resolve_home(home)
    env = os.environ if environ is None else environ
    layers: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    rules: tuple[dict[str, Any], ...] = ()
    pipelines: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    path = root / CONFIG_FILE
    if path.exists():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        for section, values in data.items():
            if section == "rules":
                if not isinstance(values, list) or not all(isinstance(r, dict) for r in values):
                    raise ConfigError(f"{path}: rules must be [[rules]] tables")
                rules = tuple(values)
                continue
            if section == "pipelines":
                _file_pipelines(path, values, pipelines, origins)
                continue
            if section not in _SECTIONS:
                raise ConfigError(f"{path}: unknown section [{section}] (sections: "
                                  f"{', '.join(_SECTIONS)}; a pipeline's settings go in "
                                  f"[pipelines.<name>])")
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: [{section}] must be a table")
            for key, value in values.items():
                layers[section][key] = (value, str(path))
    for name, value in env.items():
        if not name.startswith(envvars.SETTING_PREFIX):
            continue
        parts = name[len(envvars.SETTING_PREFIX):].lower().split("__")
        if len(parts) == 3 and parts[0] == "pipelines" and all(parts):
            _set_pipeline(pipelines, origins, parts[1], parts[2], value, f"environment {name}")
            continue
        if len(parts) != 2 or parts[0] not in _SECTIONS:
            raise ConfigError(f"environment: {name} is not LAKELINE__<SECTION>__<KEY> "
                              "or LAKELINE__PIPELINES__<NAME>__<KEY>")
        layers[parts[0]][parts[1]] = (value, f"environment {name}")
    for dotted, value in (overrides or {}).items():
        parts = dotted.split(".")
        if len(parts) == 3 and parts[0] == "pipelines" and all(parts):
            _set_pipeline(pipelines, origins, parts[1], parts[2], value, "command line")
            continue
        if len(parts) != 2 or parts[0] not in _SECTIONS or not parts[1]:
            raise ConfigError(f"override {dotted!r} is not <section>.<key> or pipelines.<name>.<key>")
        layers[parts[0]][parts[1]] = (value, "command line")
    built: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        built[section] = _build(cls, section, layers[section])
    settings = Settings(home=root, rules=rules, pipelines=FrozenDict(pipelines),
                        origins=FrozenDict(origins), **built)
    _validate(settings)
    return settings


def _file_pipelines(path: Path, values: Any, pipelines: dict[str, dict[str, Any]],
                    origins: dict[str, str]) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [pipelines] must be a table")
    for name, table in values.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [pipelines.{name}] must be a table")
        for key, value in table.items():
            _set_pipeline(pipelines, origins, name, key, value, str(path))


def _set_pipeline(pipelines: dict[str, dict[str, Any]], origins: dict[str, str], name: str, key: str,
                  value: Any, origin: str) -> None:
    pipelines.setdefault(name, {})[key] = value
    origins[f"pipelines.{name}.{key}"] = origin


def _build(cls: type[T], section: str, values: Mapping[str, tuple[Any, str]]) -> T:
    """An instance of the settings dataclass ``cls`` from ``{key: (value, origin)}``; unknown
    keys and values of the wrong type raise :class:`ConfigError` naming their origin."""
    types = _field_types(cls)
    kwargs: dict[str, Any] = {}
    for key, (value, origin) in values.items():
        if key not in types:
            raise ConfigError(f"{origin}: unknown setting {section}.{key} "
                              f"(settings: {', '.join(types)})")
        kwargs[key] = _coerce(section, key, value, types[key], origin)
    return cls(**kwargs)


def pipeline_settings(settings: Settings, name: str, cls: type[T], *,
                      nested: tuple[str, ...] = ("dq",)) -> T:
    """The settings dataclass ``cls`` of pipeline ``name`` from ``[pipelines.<name>]`` (and its
    environment and command-line overrides). Keys in ``nested`` (sub-tables such as ``dq``)
    belong to other readers and are skipped."""
    raw = settings.pipelines.get(name, {})
    values = {k: (v, settings.origins.get(f"pipelines.{name}.{k}", CONFIG_FILE))
              for k, v in raw.items() if k not in nested}
    return _build(cls, f"pipelines.{name}", values)


def check(ok: bool, settings: Settings, name: str, key: str, message: str) -> None:
    """Raise :class:`ConfigError` naming where ``pipelines.<name>.<key>`` was set unless ``ok``."""
    if not ok:
        origin = settings.origins.get(f"pipelines.{name}.{key}", "default")
        raise ConfigError(f"{origin}: pipelines.{name}.{key} {message}")


def _validate(s: Settings) -> None:
    checks = [
        (s.ingest.chunk_bytes >= 1024, "ingest.chunk_bytes must be >= 1024"),
        (s.ingest.idempotency_ttl_days >= 1, "ingest.idempotency_ttl_days must be >= 1"),
        (0 <= s.queue.visibility_timeout <= 43200, "queue.visibility_timeout must be 0..43200"),
        (60 <= s.queue.retention_seconds <= 1209600, "queue.retention_seconds must be 60..1209600"),
        (1 <= s.queue.max_receive_count <= 1000, "queue.max_receive_count must be 1..1000"),
        (1 <= s.queue.batch_size <= 10, "queue.batch_size must be 1..10"),
        (1 <= s.runner.workers <= 64, "runner.workers must be 1..64"),
        (s.lake.profile in {"local", "aws"}, "lake.profile must be 'local' or 'aws'"),
        (s.sql.dialect in SQL_DIALECTS, f"sql.dialect must be 'duckdb' or 'athena', got {s.sql.dialect!r} "
                                        "(lakeline.toml [sql] dialect or LAKELINE__SQL__DIALECT)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def default_config_text() -> str:
    """The commented ``lakeline.toml`` that ``lakeline init`` writes."""
    body: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        body[section] = {f.name: f.default for f in dataclasses.fields(cls)}
    header = (
        "# lakeline configuration. Precedence: this file < LAKELINE__SECTION__KEY env < flags.\n"
        "# Every key is optional; these are the defaults.\n\n"
    )
    return header + tomli_w.dumps(body)
