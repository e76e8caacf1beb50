"""Queries through Amazon Athena (``lakeline sql --engine athena --profile aws``).

A query starts in the lake's workgroup (``aws.athena_workgroup``, whose bytes-scanned cutoff
`deploy sam` sets from ``sql.max_bytes``) against its Glue database, is polled with a growing
interval until it ends (a note on stderr every few seconds while it runs), and its rows are
read page by page — only as many pages as the caller wants. Values come back typed by the
result's column types (Athena returns text). What it scanned and cost (US$5 per TB, at least
10 MB per query) comes with the rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from lakeline.adapters.aws.session import AwsClients, translate_errors
from lakeline.errors import UsageError

#: Athena's price per byte scanned (US$5 per TB) and its minimum charge per query (10 MB)
PRICE_PER_BYTE = 5.0 / 1e12
MIN_BILLED_BYTES = 10 * 1024 * 1024
PAGE_ROWS = 1000
_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass
class AthenaResult:
    """Columns, rows (typed) and what the query cost."""

    query_id: str
    columns: list[str]
    types: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    more: bool = False
    bytes_scanned: int = 0
    elapsed_ms: int = 0

    @property
    def cost_usd(self) -> float:
        """What Athena bills for the query (0 when it scanned nothing, e.g. a DDL)."""
        return max(self.bytes_scanned, MIN_BILLED_BYTES) * PRICE_PER_BYTE if self.bytes_scanned else 0.0


def _typed(value: str | None, kind: str) -> Any:
    if value is None:
        return None
    kind = kind.lower()
    if kind in ("tinyint", "smallint", "integer", "int", "bigint"):
        return int(value)
    if kind in ("double", "float", "real"):
        return float(value)
    if kind == "boolean":
        return value.lower() == "true"
    if kind.startswith("decimal"):
        return Decimal(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind.startswith("timestamp"):
        try:
            return datetime.fromisoformat(value.replace(" UTC", "+00:00"))
        except ValueError:
            return value
    return value


def run_query(clients: AwsClients, query: str, *, workgroup: str, database: str, limit: int | None = None,
              progress: Callable[[str], None] | None = None, poll: float = 0.2,
              sleep: Callable[[float], None] = time.sleep) -> AthenaResult:
    """Run ``query`` on Athena and read at most ``limit`` rows (all without one); ``more`` says
    whether rows were left unread. A failed or cancelled query raises :class:`UsageError`
    with Athena's reason."""
    athena = clients.client("athena")
    with translate_errors("Athena StartQueryExecution"):
        qid = athena.start_query_execution(QueryString=query, WorkGroup=workgroup,
                                           QueryExecutionContext={"Database": database})["QueryExecutionId"]
    started, told, wait = time.monotonic(), 0.0, poll
    while True:
        with translate_errors("Athena GetQueryExecution"):
            ex = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        state = ex["Status"]["State"]
        if state in _DONE:
            break
        waited = time.monotonic() - started
        if progress is not None and waited - told >= 5:
            progress(f"athena: query {qid} {state.lower()} for {waited:.0f} s")
            told = waited
        sleep(wait)
        wait = min(wait * 1.5, 5.0)
    if state != "SUCCEEDED":
        why = ex["Status"].get("StateChangeReason") or state
        raise UsageError(f"Athena query {qid} {state.lower()}: {why}")
    stats = ex.get("Statistics", {})
    result = AthenaResult(qid, [], [], bytes_scanned=int(stats.get("DataScannedInBytes", 0)),
                          elapsed_ms=int(stats.get("EngineExecutionTimeInMillis", 0)))
    first = True
    for page in _pages(athena, qid):
        meta = page["ResultSet"].get("ResultSetMetadata", {}).get("ColumnInfo", [])
        if first:
            result.columns = [c["Name"] for c in meta]
            result.types = [c.get("Type", "varchar") for c in meta]
        rows = page["ResultSet"].get("Rows", [])
        if first and rows and [d.get("VarCharValue") for d in rows[0]["Data"]] == result.columns:
            rows = rows[1:]  # a SELECT's first page starts with the header row
        first = False
        for row in rows:
            if limit is not None and len(result.rows) >= limit:
                result.more = True
                return result
            cells = [d.get("VarCharValue") for d in row["Data"]]
            result.rows.append([_typed(v, t) for v, t in zip(cells, result.types, strict=False)])
    return result


def _pages(athena: Any, qid: str) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"QueryExecutionId": qid, "MaxResults": PAGE_ROWS}
        if token:
            kwargs["NextToken"] = token
        with translate_errors("Athena GetQueryResults"):
            page = athena.get_query_results(**kwargs)
        yield page
        token = page.get("NextToken")
        if not token:
            return


__all__ = ["AthenaResult", "run_query"]
