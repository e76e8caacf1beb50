"""``lakeline sql`` without a query, on a terminal: an interactive SQL shell over the lake.

Every lake table has its view from the start (as in ``lakeline tables``); an Iceberg table is
planned when a statement names it, as ``lakeline sql`` does, so the Iceberg catalog is opened
only by the first statement that needs it. Results print as ``lakeline sql`` prints them.

- a statement ends with ``;`` at the end of a line and may span lines (the prompt then
  becomes ``...>``); a blank line in the middle of a statement is kept;
- ``.tables`` lists the tables, ``.schema TABLE`` its columns and types, ``.help`` the
  commands, ``.quit`` / ``.exit`` or Ctrl-D leaves; Ctrl-C drops the statement being typed;
- a failing statement prints ``error: …`` and the shell goes on;
- history is kept in ``HOME/.lakeline_sql_history`` (the lake's home); Tab completes SQL
  keywords, table names (``silver.sh`` → ``silver.shipments``) and column names.

The shell itself is :func:`repl`, which reads lines from any iterator (tests drive it with a
list); :func:`shell` gives it the terminal through :mod:`readline`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lakeline.cli.query import Query, print_result, table_specs
from lakeline.console import emit_table
from lakeline.errors import LakelineError, UsageError
from lakeline.lake import Lake

if TYPE_CHECKING:
    import duckdb

    from lakeline.sql import Scope, TableInfo

HISTORY_FILE = ".lakeline_sql_history"
#: lines of history kept
HISTORY_LENGTH = 1000
PROMPT = "lakeline> "
CONTINUATION = "     ...> "
HELP = """\
Statements end with ; and may span lines. Commands:
  .tables          the tables of the lake
  .schema TABLE    the columns and types of TABLE
  .help            this text
  .quit / .exit    leave (Ctrl-D too); Ctrl-C drops the statement being typed"""
#: SQL words Tab completes (beside table and column names)
KEYWORDS = (
    "SELECT", "FROM", "WHERE", "GROUP BY", "GROUP BY ALL", "ORDER BY", "HAVING", "LIMIT", "OFFSET", "JOIN",
    "LEFT JOIN", "INNER JOIN", "FULL JOIN", "CROSS JOIN", "ON", "USING", "AS", "AND", "OR", "NOT", "IN",
    "IS", "NULL", "LIKE", "ILIKE", "BETWEEN", "CASE", "WHEN", "THEN", "ELSE", "END", "DISTINCT", "COUNT",
    "SUM", "AVG", "MIN", "MAX", "WITH", "UNION", "UNION ALL", "EXCEPT", "INTERSECT", "DESC", "ASC",
    "EXPLAIN", "DESCRIBE", "SUMMARIZE", "CAST", "QUALIFY", "OVER", "PARTITION BY", "FILTER", "EXISTS",
    "FOR VERSION AS OF", "FOR TIMESTAMP AS OF",
)
#: the line the terminal gives for Ctrl-C: the statement typed so far is dropped
CANCEL = "\x03"
_DOT = re.compile(r"^\.(?P<command>\w+)\s*(?P<arg>.*?)\s*;?\s*$")


class Session:
    """One shell's DuckDB connection over a lake, statement after statement (temporary
    tables and settings a statement makes stay for the next ones)."""

    def __init__(self, lake: Lake, *, dialect: str | None = None, max_bytes: int | None = None) -> None:
        from lakeline.sql import connect, has_iceberg, scope  # heavy: loads DuckDB

        self.lake = lake
        self.dialect = dialect
        self.max_bytes = lake.settings.sql.max_bytes if max_bytes is None else max_bytes
        specs = table_specs(lake)
        self.scope = scope(lake, None, lambda: specs)
        self.con: duckdb.DuckDBPyConnection = connect(lake, specs, scope=self.scope)
        self.iceberg = has_iceberg(lake)
        self._words: list[str] | None = None

    @property
    def tables(self) -> list[TableInfo]:
        """The lake's tables (Iceberg ones not included: see :meth:`table_names`)."""
        return self.scope.tables

    def table_names(self) -> list[str]:
        """Every table a statement may name: the lake's, then the Iceberg catalog's."""
        names = [t.name for t in self.tables]
        if self.iceberg:
            from lakeline.sql_iceberg import catalog_tables

            names += sorted(catalog_tables(self.lake.catalog))
        return names

    def execute(self, statement: str) -> None:
        """Run one statement and print its result (:class:`UsageError` when it fails)."""
        import duckdb  # heavy: DuckDB (the shell's connection has loaded it; named for its errors)

        from lakeline.sql_names import named_tables, split_explain

        prefix, body = split_explain(statement)
        names = named_tables(body, self.con)
        q = Query(self.lake, body, self.dialect, con=self.con, sc=self._scope(names))
        if prefix == "EXPLAIN":
            from lakeline.cli.query import explain_query

            explain_query(self.lake, q, False)
            return
        try:
            rel = q.relation(prefix, self.max_bytes or None)
        except duckdb.Error as exc:
            raise UsageError(f"SQL error: {exc}") from None
        print_result(self.lake, self.con, rel, "table", None)

    def _scope(self, names: frozenset[tuple[str, str]] | None) -> Scope:
        from lakeline.sql import LAKE_SCHEMAS, Scope

        lake_names = {t.name.lower() for t in self.tables}
        # the catalog is opened (pyiceberg imported) only for a statement naming a table that is
        # not one of the lake's (or one whose names cannot be read)
        iceberg = self.iceberg and (names is None or any(
            s not in LAKE_SCHEMAS or f"{s}.{t}".lower() not in lake_names for s, t in names))
        return Scope(None, self.scope.specs, self.tables, iceberg)

    def schema(self, table: str) -> list[tuple[str, str]]:
        """``(column, type)`` of ``table`` (a lake or Iceberg table, as a statement names it)."""
        import duckdb  # heavy: DuckDB (the shell's connection has loaded it; named for its errors)

        from lakeline.sql_names import named_tables

        if not table:
            raise UsageError(".schema needs a table: .schema silver.shipments (.tables lists them)")
        body = f"SELECT * FROM {table} LIMIT 0"
        q = Query(self.lake, body, "duckdb", con=self.con, sc=self._scope(named_tables(body, self.con)))
        try:
            rel = q.relation(None, None)
        except duckdb.Error as exc:
            raise UsageError(f"SQL error: {exc}") from None
        assert rel is not None  # a SELECT has rows
        return [(c, str(t)) for c, t in zip(rel.columns, rel.types, strict=True)]

    def words(self) -> list[str]:
        """What Tab completes: keywords, schemas, table names and the lake tables' column names
        (computed once)."""
        if self._words is None:
            names = self.table_names()
            rows = self.con.execute(
                "SELECT DISTINCT column_name FROM information_schema.columns "
                "WHERE table_schema IN ('silver', 'gold', 'quarantine')").fetchall()
            found = {*KEYWORDS, *(k.lower() for k in KEYWORDS), *names,
                     *(n.split(".", 1)[0] for n in names), *(str(r[0]) for r in rows)}
            self._words = sorted(found)
        return self._words

    def complete(self, text: str) -> list[str]:
        """The completions of ``text`` (the word before the cursor)."""
        return [w for w in self.words() if w.startswith(text)] if text else []


def statements(lines: Iterable[str], prompt: Callable[[str], None] | None = None) -> Iterator[str]:
    """The statements and dot commands of ``lines``: a dot command is one line; a statement
    runs until a line ending with ``;``. What is left at the end is a last statement.
    ``prompt`` is told which prompt the next line gets."""
    buffer: list[str] = []
    if prompt:
        prompt(PROMPT)
    for line in lines:
        text = line.rstrip("\n")
        if text == CANCEL:
            buffer = []
        elif not buffer and text.strip().startswith("."):
            yield text.strip()
        elif buffer or text.strip():
            buffer.append(text)
            if text.rstrip().endswith(";"):
                yield "\n".join(buffer)
                buffer = []
        if prompt:
            prompt(CONTINUATION if buffer else PROMPT)
    if any(b.strip() for b in buffer):
        yield "\n".join(buffer)


def repl(session: Session, lines: Iterable[str], prompt: Callable[[str], None] | None = None) -> None:
    """Run the shell over ``lines`` until they end or ``.quit``; results on stdout, errors on
    stderr (the shell goes on after an error)."""
    for item in statements(lines, prompt):
        if item.startswith("."):
            if not dot_command(session, item):
                return
            continue
        try:
            session.execute(item)
        except LakelineError as exc:
            click.echo(f"error: {exc}", err=True)


def dot_command(session: Session, text: str) -> bool:
    """Run a dot command; False for ``.quit`` / ``.exit``."""
    m = _DOT.match(text)
    command, arg = (m.group("command").lower(), m.group("arg")) if m else ("", "")
    try:
        if command in ("quit", "exit", "q"):
            return False
        if command == "tables":
            emit_table(["table"], [(n,) for n in session.table_names()])
        elif command == "schema":
            emit_table(["column", "type"], session.schema(arg))
        elif command == "help":
            click.echo(HELP)
        else:
            raise UsageError(f"unknown command {text.split()[0]!r}; .help lists the commands")
    except LakelineError as exc:
        click.echo(f"error: {exc}", err=True)
    return True


def shell(lake: Lake, *, dialect: str | None = None, max_bytes: int | None = None) -> None:
    """The interactive shell on the terminal (line editing, history and completion by
    :mod:`readline`)."""
    import readline

    session = Session(lake, dialect=dialect, max_bytes=max_bytes)
    history = Path(lake.settings.home) / HISTORY_FILE
    with contextlib.suppress(OSError):  # no history yet
        readline.read_history_file(history)
    readline.set_history_length(HISTORY_LENGTH)
    readline.set_completer_delims(" \t\n,;()=<>+-*/|")  # a dotted name is one word
    matches: list[str] = []

    def complete(text: str, state: int) -> str | None:
        if state == 0:
            matches[:] = session.complete(text)
        return matches[state] if state < len(matches) else None

    readline.set_completer(complete)
    readline.parse_and_bind("tab: complete")
    click.echo(f"lakeline SQL over {lake.settings.home} (statements end with ;  .tables  .help  .quit)",
               err=True)
    current = [PROMPT]

    def lines() -> Iterator[str]:
        while True:
            try:
                yield input(current[0])
            except KeyboardInterrupt:
                click.echo("^C", err=True)
                yield CANCEL
            except EOFError:
                click.echo(err=True)
                return

    try:
        repl(session, lines(), lambda p: current.__setitem__(0, p))
    finally:
        try:
            readline.write_history_file(history)
        except OSError as exc:
            click.echo(f"history not saved: {exc}", err=True)
