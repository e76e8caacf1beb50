"""A lake: the settings plus one open adapter per port, chosen by the profile.

``Lake.open(settings)`` is the only place that picks backends, so stages and the CLI never
name an adapter. Adapters are imported lazily: the AWS backend needs the ``aws`` extra.

The Iceberg catalog is picked here too (SQL on SQLite locally, Glue on AWS) but opened only
when first used (:attr:`Lake.catalog`): importing pyiceberg takes about 1.5 s, which a lake
without Iceberg tables should never pay.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lakeline.config import CONFIG_FILE, ZONES, Settings, default_config_text
from lakeline.errors import ConfigError
from lakeline.ports import Ledger, Notifier, ObjectStore, ParameterStore, Queue, StateStore

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

    from lakeline.adapters.record_lineage import RecordLedger
    from lakeline.ports.notifier import Notification

INGEST_QUEUE = "ingest"
TRANSFORM_QUEUE = "transform"

# cached_property has no lock of its own from Python 3.12 on, and worker threads share a lake:
# this makes sure they share one catalog (one SQLAlchemy engine / Glue client) too.
_catalog_lock = threading.Lock()


class CatalogOpener(Protocol):
    """How a lake's Iceberg catalog is opened (``lakeline.adapters.<profile>.catalog``)."""

    def warehouse(self) -> str:
        """The warehouse URI of the lake's Iceberg tables."""
        ...

    def properties(self) -> dict[str, str]:
        """The pyiceberg catalog properties (without the catalog type)."""
        ...

    def exists(self) -> bool:
        """True when the catalog exists (checking it creates nothing)."""
        ...

    def open(self) -> Catalog:
        """The catalog, created if missing."""
        ...


@dataclass
class Lake:
    """Open ports of one lake."""

    settings: Settings
    store: ObjectStore
    ingest_queue: Queue
    transform_queue: Queue
    state: StateStore
    params: ParameterStore
    notifier: Notifier
    #: how :attr:`catalog` is opened; None for a lake built without Iceberg support.
    catalog_opener: CatalogOpener | None = None
    #: how :attr:`lineage` is opened (the ledger of the profile); None: the local ledger.
    ledger_opener: Callable[[], Ledger] | None = None

    @classmethod
    def open(cls, settings: Settings) -> Lake:
        """Open the lake described by ``settings`` (no resources are created remotely)."""
        if settings.lake.profile == "aws":
            return cls._open_aws(settings)
        if settings.lake.profile != "local":
            raise ConfigError(f"unknown profile {settings.lake.profile!r}; use local or aws")
        # a lake imports only its own profile's adapters (the aws ones need the aws extra)
        from lakeline.adapters.local.catalog import SqliteCatalogOpener
        from lakeline.adapters.local.objectstore import FsObjectStore
        from lakeline.adapters.local.params import SCHEMA as PARAMS_SCHEMA
        from lakeline.adapters.local.params import SqliteParameterStore
        from lakeline.adapters.local.queue import open_queue_pair
        from lakeline.adapters.local.sqlite import Database
        from lakeline.adapters.local.state import SCHEMA as STATE_SCHEMA
        from lakeline.adapters.local.state import SqliteStateStore

        state_db = Database(settings.state_dir / "state.db", STATE_SCHEMA + ";" + PARAMS_SCHEMA)
        queue_db_path = settings.state_dir / "queue.db"
        n = settings.notify
        smtp = (
            {"host": n.smtp_host, "port": n.smtp_port, "user": n.smtp_user,
             "from": n.smtp_from, "to": n.smtp_to}
            if n.smtp_host else None
        )
        return cls(
            settings=settings,
            store=FsObjectStore(settings.zones_dir),
            ingest_queue=open_queue_pair(queue_db_path, INGEST_QUEUE, settings.queue),
            transform_queue=open_queue_pair(queue_db_path, TRANSFORM_QUEUE, settings.queue),
            state=SqliteStateStore(state_db),
            params=SqliteParameterStore(state_db),
            notifier=_OutboxOnFirstUse(settings.outbox_dir, smtp),
            catalog_opener=SqliteCatalogOpener.for_settings(settings),
            ledger_opener=lambda: _local_ledger(settings),
        )

    @classmethod
    def _open_aws(cls, settings: Settings) -> Lake:
        try:
            from lakeline.adapters.aws.catalog import GlueCatalogOpener
            from lakeline.adapters.aws.lineage import DynamoLedger
            from lakeline.adapters.aws.notifier import SnsNotifier
            from lakeline.adapters.aws.objectstore import S3ObjectStore
            from lakeline.adapters.aws.params import SsmParameterStore
            from lakeline.adapters.aws.queue import SqsQueue
            from lakeline.adapters.aws.session import clients, parse_s3_uri
            from lakeline.adapters.aws.state import DynamoStateStore
        except ImportError as exc:
            raise ConfigError(
                f"the aws profile needs the 'aws' extra: pip install 'lakeline[aws]' ({exc})"
            ) from None
        aws = settings.aws
        missing = [
            f"aws.{name}" for name in (
                "ingest_queue_url", "ingest_dlq_url", "transform_queue_url", "transform_dlq_url",
                "topic_arn",
            ) if not getattr(aws, name)
        ]
        if missing:
            raise ConfigError(
                "the aws profile needs " + ", ".join(missing) + " (set them in [aws] of "
                "lakeline.toml or as LAKELINE__AWS__<KEY>; `lakeline deploy sam` prints them as outputs)"
            )
        c = clients(aws)
        lineage_table = aws.lineage_table or f"{settings.lake.name}-lineage"
        zones = {z: parse_s3_uri(aws.zone_uri(z, settings.lake.name)) for z in ZONES}

        def pair(name: str, url: str, dlq_url: str) -> Queue:
            dlq = SqsQueue(c.sqs, dlq_url, name=f"{name}-dlq", source_url=url)
            return SqsQueue(c.sqs, url, name=name, dlq=dlq)

        return cls(
            settings=settings,
            store=S3ObjectStore(c.s3, zones),
            ingest_queue=pair(INGEST_QUEUE, aws.ingest_queue_url, aws.ingest_dlq_url),
            transform_queue=pair(TRANSFORM_QUEUE, aws.transform_queue_url, aws.transform_dlq_url),
            state=DynamoStateStore(c.dynamodb, aws.state_table),
            # rooted at /<lake name>: the deployed roles are granted parameter/<lake name>/* only
            params=SsmParameterStore(c.ssm, prefix=f"/{settings.lake.name}"),
            notifier=SnsNotifier(c.sns, aws.topic_arn),
            catalog_opener=GlueCatalogOpener(settings.lake.name, aws, zones["silver"]),
            ledger_opener=lambda: DynamoLedger(c.dynamodb, lineage_table),
        )

    @cached_property
    def lineage(self) -> RecordLedger:
        """The lineage ledger, opened on first use: ``state/lineage.db`` locally, the DynamoDB
        table ``aws.lineage_table`` (default ``<lake.name>-lineage``) on AWS; record-level
        nodes are Parquet files in the silver zone (:mod:`lakeline.adapters.record_lineage`)."""
        from lakeline.adapters.record_lineage import RecordLedger  # not paid by `lakeline sql`

        inner = _local_ledger(self.settings) if self.ledger_opener is None else self.ledger_opener()
        return RecordLedger(inner, self.store, self.settings.home / "work")

    @cached_property
    def catalog(self) -> Catalog:
        """The lake's Iceberg catalog, opened on first use (SQL catalog on SQLite in
        ``state/catalog.db`` locally, the Glue Data Catalog on AWS)."""
        opener = self._catalog_opener()
        with _catalog_lock:
            found: Catalog | None = self.__dict__.get("catalog")
            if found is not None:  # another thread opened it while this one waited
                return found
            return opener.open()

    @property
    def has_catalog(self) -> bool:
        """True when the lake has an Iceberg catalog; asking creates none."""
        if "catalog" in self.__dict__:
            return True
        return self.catalog_opener is not None and self.catalog_opener.exists()

    @property
    def iceberg_warehouse(self) -> str:
        """The warehouse URI of the lake's Iceberg tables (in the silver zone)."""
        return self._catalog_opener().warehouse()

    def _catalog_opener(self) -> CatalogOpener:
        if self.catalog_opener is None:
            raise ConfigError("this lake was opened without an Iceberg catalog (use Lake.open)")
        return self.catalog_opener

    @property
    def is_local(self) -> bool:
        """True for the embedded backend (one machine: runner lock and recovery apply)."""
        return self.settings.lake.profile == "local"

    @property
    def work_dir(self) -> Path:
        """Scratch space on the lake's filesystem (so finished files move in by rename)."""
        path = self.settings.home / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def queues(self) -> dict[str, Queue]:
        """Every queue by name, DLQs included."""
        out: dict[str, Queue] = {}
        for q in (self.ingest_queue, self.transform_queue):
            out[q.name] = q
            if q.dlq is not None:
                out[q.dlq.name] = q.dlq
        return out


class _OutboxOnFirstUse(Notifier):
    """The local notifier (:class:`~lakeline.adapters.local.notifier.OutboxNotifier`), built
    when the first notification is sent or read: its module imports ``smtplib`` and ``ssl``
    (about 25 ms), which a command that notifies nobody, like ``lakeline sql``, does not pay."""

    def __init__(self, outbox_dir: Path, smtp: dict[str, Any] | None) -> None:
        self._args = (outbox_dir, smtp)
        self._inner: Notifier | None = None

    def _notifier(self) -> Notifier:
        if self._inner is None:  # two threads may both build one: they share the outbox file's lock
            from lakeline.adapters.local.notifier import OutboxNotifier

            self._inner = OutboxNotifier(*self._args)
        return self._inner

    def notify(self, subject: str, message: str, attributes: dict[str, Any] | None = None) -> Notification:
        """Send one notification (see ``OutboxNotifier.notify``)."""
        return self._notifier().notify(subject, message, attributes)

    def sent(self, limit: int = 100) -> list[Notification]:
        """Recently sent notifications, newest first."""
        return self._notifier().sent(limit)


def _local_ledger(settings: Settings) -> Ledger:
    from lakeline.adapters.local.lineage import SqliteLedger  # heavy: the ledger's bulk path loads Arrow

    return SqliteLedger(settings.state_dir / "lineage.db")


def init_home(home: Path) -> list[Path]:
    """Create ``home`` with a default ``lakeline.toml`` and the zone directories.

    An existing ``lakeline.toml`` is kept. Returns the paths created.
    """
    created: list[Path] = []
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / CONFIG_FILE
    if not cfg.exists():
        cfg.write_text(default_config_text(), "utf-8")
        created.append(cfg)
    for zone in ZONES:
        d = home / "zones" / zone
        if not d.exists():
            d.mkdir(parents=True)
            created.append(d)
    for d in (home / "state", home / "outbox"):
        if not d.exists():
            d.mkdir(parents=True)
            created.append(d)
    return created
