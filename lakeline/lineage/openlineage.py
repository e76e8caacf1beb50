"""Optional export of the ledger as OpenLineage run events (spec 2-0-2).

One root is one OpenLineage *run*: :func:`run_events` turns it into a ``START`` event (at its
first node, with the raw inputs) and a ``COMPLETE`` or ``FAIL`` event (with the datasets the
run wrote: silver files and tables, rejects, batches, DQ moves). Record-level nodes
(``CALCULATION_*``, one per record) are not datasets: they appear as counts in the run facet
``lakeline_lineage``. A run is ``FAIL`` when a whole-run failure was recorded
(``DQ_CHECK_FAIL``, ``FILE_FAILED``, ``RUN_FAILED``); failed records alone keep it
``COMPLETE``.

Sinks (``[lineage]`` settings, both optional): ``openlineage_file`` appends one JSON line per
event; ``openlineage_url`` POSTs each event as JSON (``urllib``; e.g. Marquez at
``http://host:5000/api/v1/lineage``). :func:`export_root` sends a root's events to the
configured sinks; the pipelines call it when a root completes (``maybe_export``).
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lakeline.errors import NotFoundError, TransientError, UsageError
from lakeline.ports.lineage_model import Node
from lakeline.version import __version__

if TYPE_CHECKING:
    from lakeline.config import Settings
    from lakeline.ports.lineage import Ledger

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet"
PRODUCER = f"https://pypi.org/project/lakeline/{__version__}/"
#: Actions whose nodes are datasets a run wrote (outputs).
OUTPUT_ACTIONS = ("BATCH_WRITTEN", "REJECTS_WRITTEN", "GLUE_BATCH_SPLIT", "DQ_CHECK_PASS", "DQ_CHECK_FAIL",
                  "FILE_FAILED")
#: Failures that fail the whole run (record-level failures only count).
RUN_FAILURES = ("DQ_CHECK_FAIL", "FILE_FAILED", "RUN_FAILED")
MAX_DATASETS = 1000


def run_id(root_id: str) -> str:
    """The OpenLineage runId (a UUID) of a root: the root id itself when it is 32 hex digits,
    else a UUID derived from it."""
    if len(root_id) == 32:
        try:
            return str(uuid.UUID(hex=root_id))
        except ValueError:
            pass
    return str(uuid.uuid5(uuid.NAMESPACE_URL, root_id))


def dataset(location: str, namespace: str) -> dict[str, Any]:
    """An OpenLineage dataset for a storage location, following the naming conventions:
    ``s3://bucket/key`` → namespace ``s3://bucket``, name ``key``; a local path → namespace
    ``file``; ``iceberg:<table>`` → the lake's namespace, name ``<table>``."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://"):].partition("/")
        return {"namespace": f"s3://{bucket}", "name": key or "/", "facets": {}}
    if location.startswith("iceberg:"):
        return {"namespace": namespace, "name": location[len("iceberg:"):], "facets": {}}
    return {"namespace": "file", "name": location, "facets": {}}


def _datasets(nodes: list[Node], namespace: str) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for n in nodes:
        if n.storage_location and n.storage_location not in seen:
            seen[n.storage_location] = dataset(n.storage_location, namespace)
    return list(seen.values())


def run_events(ledger: Ledger, root_id: str, namespace: str) -> list[dict[str, Any]]:
    """``[START, COMPLETE|FAIL]`` for one root (see the module docstring)."""
    counts = ledger.counts(root_id)
    if not counts:
        raise NotFoundError(f"no lineage recorded for root {root_id}")
    firsts = ledger.children(root_id, root_id)
    inputs = [n for n in firsts if n.action_taken == "RAW_DATA_INPUT"] or firsts
    outputs: list[Node] = []
    for action in OUTPUT_ACTIONS:
        if counts.get(action):
            outputs.extend(ledger.by_action(action, root_id, limit=MAX_DATASETS))
    finished = [n for a in ("RUN_COMPLETE", "RUN_FAILED") if counts.get(a)
                for n in ledger.by_action(a, root_id)]
    seen = firsts + outputs + finished or ledger.tree(root_id)[:1]
    started = min(n.recorded_at for n in (firsts or seen))
    ended = max(n.recorded_at for n in seen)
    pipeline = next((str(n.attrs["pipeline"]) for n in firsts + finished if n.attrs.get("pipeline")),
                    "lakeline")
    failed = any(counts.get(a) for a in RUN_FAILURES)
    facet = {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMA_URL, "root_id": root_id, "counts": counts,
             "nodes": sum(counts.values())}
    base = {"run": {"runId": run_id(root_id), "facets": {"lakeline_lineage": facet}},
            "job": {"namespace": namespace, "name": pipeline, "facets": {}},
            "producer": PRODUCER, "schemaURL": SCHEMA_URL}
    start = dict(base, eventType="START", eventTime=started, inputs=_datasets(inputs, namespace), outputs=[])
    end = dict(base, eventType="FAIL" if failed else "COMPLETE", eventTime=ended,
               inputs=_datasets(inputs, namespace), outputs=_datasets(outputs, namespace))
    return [start, end]


def namespace_of(settings: Settings) -> str:
    """The OpenLineage namespace of the lake's jobs (``[lineage] namespace`` or the lake name)."""
    return settings.lineage.namespace or settings.lake.name


def write_file(path: Path, events: list[dict[str, Any]]) -> None:
    """Append events as JSON lines (one write per call, so concurrent writers do not interleave
    within a line on a local filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(orjson.dumps(e) + b"\n" for e in events)
    with path.open("ab") as f:
        f.write(data)


def post(url: str, events: list[dict[str, Any]], timeout: float = 10.0) -> None:
    """POST each event as JSON to ``url``; an unreachable endpoint or a non-2xx answer raises
    :class:`TransientError` naming the URL."""
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"OpenLineage URL must be http:// or https://, got {url!r}")
    for event in events:
        req = urllib.request.Request(url, data=orjson.dumps(event), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked
                resp.read()
        except urllib.error.HTTPError as exc:
            raise TransientError(f"OpenLineage endpoint {url} answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TransientError(f"OpenLineage endpoint {url} unreachable: {exc}") from None


def export_root(ledger: Ledger, settings: Settings, root_id: str, *, file: str | None = None,
                url: str | None = None) -> dict[str, Any]:
    """Send a root's run events to ``file`` / ``url`` (default: the ``[lineage]`` settings; a
    relative file is under the lake home). Returns ``{root_id, events, file, url}``."""
    path = file if file is not None else settings.lineage.openlineage_file
    target = url if url is not None else settings.lineage.openlineage_url
    if not path and not target:
        raise UsageError("no OpenLineage sink: set [lineage] openlineage_file or openlineage_url "
                         "(or pass --file / --url)")
    events = run_events(ledger, root_id, namespace_of(settings))
    out_path = None
    if path:
        out_path = Path(path) if Path(path).is_absolute() else settings.home / path
        write_file(out_path, events)
    if target:
        post(target, events, settings.lineage.timeout_seconds)
    return {"root_id": root_id, "events": [e["eventType"] for e in events],
            "file": str(out_path) if out_path else None, "url": target or None}


def configured(settings: Settings) -> bool:
    """True when a sink is configured (pipelines export each completed root)."""
    return bool(settings.lineage.openlineage_file or settings.lineage.openlineage_url)
