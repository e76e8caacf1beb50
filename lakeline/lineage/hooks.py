"""The pipelines' lineage calls: open the lake's ledger, and record without ever failing the
data path.

Every hook goes through :func:`guarded`: a lineage failure (a locked database, a throttled
table, a bug) is logged as a warning with the root id and swallowed, because losing a
lineage node must never lose or delay data. Ids are deterministic where the work can repeat
(:func:`~lakeline.lineage.model.derived_id`): a redelivered event or a retried chunk records
over its earlier nodes instead of forking a second tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lakeline import log
from lakeline.lineage.model import derived_id

if TYPE_CHECKING:
    from lakeline.lake import Lake
    from lakeline.ports.lineage import Ledger

_log = log.get("lineage")


def open_ledger(lake: Lake) -> Ledger:
    """The ledger of ``lake``'s profile: ``state/lineage.db`` locally, the DynamoDB table
    ``aws.lineage_table`` (default ``<lake.name>-lineage``) on AWS."""
    settings = lake.settings
    if settings.lake.profile == "aws":
        from lakeline.adapters.aws.lineage import DynamoLedger

        ddb = getattr(lake.state, "ddb", None)
        if ddb is None:
            from lakeline.adapters.aws.session import clients

            ddb = clients(settings.aws).dynamodb
        return DynamoLedger(ddb, settings.aws.lineage_table or f"{settings.lake.name}-lineage")
    from lakeline.adapters.local.lineage import SqliteLedger

    return SqliteLedger(settings.state_dir / "lineage.db")


@contextmanager
def guarded(what: str, root_id: str | None = None) -> Iterator[None]:
    """Run a lineage write; log and swallow any failure (the data path goes on)."""
    try:
        yield
    except Exception:
        _log.warning("lineage %s failed; the data path continues", what, exc_info=True,
                     extra={"root_id": root_id})


def safely(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` under :func:`guarded`; None when it failed."""
    with guarded(what, kwargs.get("root_id") or (args[0] if args and isinstance(args[0], str) else None)):
        return fn(*args, **kwargs)
    return None


def location(lake: Lake, zone: str, key: str) -> str:
    """Where an object lives, as a reader can open it: a path on the local lake,
    ``s3://bucket/key`` on AWS."""
    return lake.store.scan_uri(zone, key)


def object_root(idempotency_key: str) -> str:
    """The root id of one landed object version, from its ingest idempotency key
    (``s3://<bucket>/<key>#<etag>``): the same object is always the same tree."""
    return derived_id("object", idempotency_key)


def node_id(root_id: str, *parts: str) -> str:
    """A deterministic node id inside ``root_id`` (a retried step records over itself)."""
    return derived_id(root_id, *parts)
