"""Model files: ``HOME/models/NAME.sql`` holds one query that lakeline materialises as ``gold.NAME``.

A model is parsed with sqlglot (DuckDB dialect) to learn what it reads: every table reference
of the query's syntax tree, minus the names its CTEs define. References are never searched for
in the text, so a table name inside a string or a comment is no input. What a model may be::

    -- HOME/models/daily_counts.sql  →  gold.daily_counts
    WITH ups AS (SELECT * FROM silver.shipments WHERE carrier = 'UPS')
    SELECT dt, count(*) AS n FROM ups GROUP BY ALL

- exactly one statement, and a query (SELECT, WITH … SELECT, a UNION of SELECTs);
- tables named with their schema (``silver.x``, ``gold.y``, ``quarantine.rejects``, an Iceberg
  ``namespace.table``); ``range`` / ``generate_series`` are the only table functions (others,
  like ``read_parquet``, would read something lakeline cannot track);
- a file name that is a plain SQL name: ``[a-z][a-z0-9_]*`` without ``__``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.errors import ParseError, SqlglotError

from lakeline.errors import ConfigError
from lakeline.tables.schema import NAME

#: the folder of HOME that holds the model files.
MODELS_DIR = "models"
#: what every error message reminds the user a model may be.
ALLOWED = ("a model is one DuckDB query over lake tables, like "
           "SELECT dt, count(*) AS n FROM silver.shipments GROUP BY ALL")
#: table functions that read nothing (a date spine): every other one could read a file or a URL.
_GENERATORS = (exp.GenerateSeries,)


@dataclass(frozen=True)
class Ref:
    """Where a model names a table (1-based line and column; None when sqlglot gave none)."""

    table: str
    line: int | None
    col: int | None


@dataclass(frozen=True)
class Model:
    """One model file: ``name`` (the file stem), its text, and the lake tables it reads."""

    name: str
    path: Path
    sql: str
    inputs: tuple[str, ...]
    #: the statement alone (no trailing ``;`` or comment), ready to wrap in ``COPY (…)``.
    query: str = field(default="", compare=False)
    refs: tuple[Ref, ...] = field(default=(), compare=False)

    @property
    def table(self) -> str:
        """The table the model materialises (``gold.NAME``)."""
        return f"gold.{self.name}"

    @property
    def sql_sha256(self) -> str:
        """SHA-256 of the file's text: an edited model is materialised again."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    def ref(self, table: str) -> Ref | None:
        """The first place the model names ``table``."""
        return next((r for r in self.refs if r.table == table), None)


def where(path: Path, line: int | None = None, col: int | None = None) -> str:
    """``path:line:col`` as compilers print it (editors open it at the spot)."""
    out = str(path)
    if line is not None:
        out += f":{line}"
        if col is not None:
            out += f":{col}"
    return out


def model_files(home: Path) -> list[Path]:
    """The model files of ``home``, by name."""
    folder = home / MODELS_DIR
    return sorted(p for p in folder.glob("*.sql") if p.is_file()) if folder.is_dir() else []


def discover(home: Path) -> list[Model]:
    """Every model of ``home/models/*.sql``, by name; :class:`ConfigError` at the first bad file."""
    return [parse_model(p) for p in model_files(home)]


def check_name(path: Path) -> str:
    """The model name of ``path`` (its stem) if it is a usable table name."""
    name = path.stem
    # a leading "_" would be a hidden folder of gold (lakeline.sql skips gold/_quality & co.)
    if not NAME.match(name) or "__" in name or name.startswith("_"):
        raise ConfigError(
            f"{where(path)}: {name!r} is not a valid model name; the file name is the table name "
            "gold.NAME, so it must be lower-case letters, digits and _, start with a letter and "
            "have no __ (e.g. daily_counts.sql)"
        )
    return name


def parse_model(path: Path) -> Model:
    """Parse one model file; :class:`ConfigError` with ``path:line:col`` when it is not a model."""
    name = check_name(path)
    try:
        text = path.read_text("utf-8-sig")  # an editor's byte-order mark is no SQL
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where(path)}: cannot read model {name}: {exc}") from None
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
        tokens = sqlglot.tokenize(text, read="duckdb")
    except ParseError as exc:
        line, col, what = _parse_error(exc)
        at = where(path, line, col)
        raise ConfigError(f"{at}: model {name} does not parse: {what}; {ALLOWED}") from None
    except SqlglotError as exc:  # the tokenizer's errors (an unterminated string) carry no position
        raise ConfigError(f"{where(path)}: model {name} does not parse: {exc}; {ALLOWED}") from None
    groups = _statements(tokens)
    if not groups or not statements:
        raise ConfigError(f"{where(path)}: model {name} is empty; {ALLOWED}")
    if len(groups) > 1 or len(statements) > 1:
        line, col = _position(text, groups[1][0].start) if len(groups) > 1 else (None, None)
        raise ConfigError(f"{where(path, line, col)}: model {name} has more than one statement; "
                          f"{ALLOWED} (lakeline writes gold.{name} itself)")
    stmt = statements[0]
    if not isinstance(stmt, exp.Query):
        line, col = _position(text, groups[0][0].start)
        raise ConfigError(f"{where(path, line, col)}: model {name} is {stmt.key.upper()}, not a query; "
                          "a model is one SELECT, WITH … SELECT or UNION of SELECTs over lake tables "
                          f"(lakeline writes gold.{name} itself)")
    refs = _refs(path, name, text, stmt)
    query = text[groups[0][0].start: groups[0][-1].end + 1]
    return Model(name, path, text, tuple(sorted({r.table for r in refs})), query, tuple(refs))


def _parse_error(exc: ParseError) -> tuple[int | None, int | None, str]:
    """Line, column and description of sqlglot's first error, pointing at the start of the
    token it stopped at (sqlglot's column is the token's last character)."""
    first = exc.errors[0] if exc.errors else {}
    what, near = str(first.get("description") or exc), str(first.get("highlight") or "")
    line, col = first.get("line"), first.get("col")
    if near and "\n" not in near and isinstance(col, int) and col >= len(near):
        col = col - len(near) + 1
    return line, col, f"{what} (at {near!r})" if near else what


def _statements(tokens: list[Token]) -> list[list[Token]]:
    """The tokens of each non-empty statement (split at ``;`` as sqlglot's parser splits)."""
    groups: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            groups.append([])
        else:
            groups[-1].append(token)
    return [g for g in groups if g]


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of the character at ``offset``."""
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def _refs(path: Path, name: str, text: str, stmt: exp.Query) -> list[Ref]:
    """The lake tables ``stmt`` names, in the order they appear, with their positions;
    :class:`ConfigError` for the first reference (in the text) that is not a lake table."""
    ctes = {cte.alias_or_name.lower() for cte in stmt.find_all(exp.CTE)}
    refs: list[Ref] = []
    errors: list[tuple[int, int, str]] = []  # (line, col, message): the tree is walked breadth-first
    for table in stmt.find_all(exp.Table):
        if isinstance(table.this, _GENERATORS):
            continue
        if not isinstance(table.this, exp.Identifier):
            call = table.this.sql(dialect="duckdb")
            errors.append((0, 0, f"{where(path)}: model {name} reads the table function {call}; {ALLOWED} "
                                 "(only range and generate_series may stand in FROM: lakeline could not "
                                 "track what other functions read)"))
            continue
        first = table.args.get("catalog") or table.args.get("db") or table.this
        start = first.meta.get("start") if isinstance(first, exp.Identifier) else None
        line, col = _position(text, start) if isinstance(start, int) else (None, None)
        at, order = where(path, line, col), (line or 0, col or 0)
        if table.catalog:
            errors.append((*order, f"{at}: model {name} names {table.sql(dialect='duckdb')} with a catalog; "
                                   f"write schema.table, like silver.shipments ({ALLOWED})"))
        elif not table.db and table.name.lower() in ctes:
            continue  # a CTE of the model, not a lake table
        elif not table.db and table.this.quoted and any(c in table.name for c in "./"):
            # DuckDB reads FROM 'x.csv' as a file
            errors.append((*order, f"{at}: model {name} reads the file {table.name!r}; {ALLOWED} "
                                   "(lakeline could not track what a file holds)"))
        elif not table.db:
            errors.append((*order, f"{at}: model {name} reads {table.name!r} without a schema; qualify it as "
                                   f"the lake names it, like silver.{table.name} or gold.{table.name} "
                                   "(`lakeline tables` lists them)"))
        else:
            # "<table>$snapshots" & co. are Iceberg metadata tables of <table>: that is the input
            base = table.name.partition("$")[0]
            refs.append(Ref(f"{table.db}.{base}".lower(), line, col))
    if errors:
        raise ConfigError(min(errors)[2])
    refs.sort(key=lambda r: (r.line or 0, r.col or 0))
    return refs
