"""`lakeline sql` opens only the tables a query names (issue 18, part 4): which names a query
has (joins, CTEs, subqueries, quoted names, time travel, statements only sqlglot reads),
what a query imports (no pyiceberg and no pipelines for `SELECT 1` or a Parquet table, checked
in a fresh interpreter), that Iceberg tables, promoted tables and unknown names still answer
as before, the interactive shell (driven line by line, and on a pseudo-terminal) and SQL from
standard input."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest

from lakeline.cli.shell import CANCEL, CONTINUATION, HELP, PROMPT, Session, repl, statements
from lakeline.lake import Lake, init_home
from lakeline.sql import scope
from lakeline.sql_names import named_tables
from lakeline.tables.iceberg import append_batch, ensure_table
from tests.functional.helpers import land, rec, run, settings

LAKELINE = Path(sys.executable).with_name("lakeline")
ICEBERG = "retail_silver.orders_silver"
SCHEMA = pa.schema([("order_id", pa.int64()), ("order_date", pa.date32()), ("sales_amount", pa.float64())])
WEIGHTS = [1.5, 2.0, 3.25, 4.0]
#: runs the CLI in a fresh interpreter, then reports what got imported (on stderr, last line)
CHILD = (
    "import sys, json\n"
    "from lakeline.cli.main import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
    "mods = ('pyiceberg', 'sqlalchemy', 'sqlglot', 'lakeline.pipelines.registry', 'lakeline.workflow.engine',\n"
    "        'lakeline.promotion.promote', 'lakeline.sql_iceberg')\n"
    "print('IMPORTED', json.dumps({m: m in sys.modules for m in mods}), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def lake_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake with silver.shipments (4 records, 2 days) and an Iceberg table (3 snapshots)."""
    home = tmp_path_factory.mktemp("sql-lazy") / "lake"
    init_home(home)
    lake = Lake.open(settings(home))
    records = [rec(shipment_id=f"shp_00000000000{i}", event_time=f"2026-01-0{5 + i % 2}T10:00:00Z", weight_kg=w)
               for i, w in enumerate(WEIGHTS)]
    land(lake, "shipments/2026-01-05/a.jsonl", b"".join(orjson.dumps(r) + b"\n" for r in records))
    assert run(lake.settings)["loaded"] == 4
    ensure_table(lake, ICEBERG, SCHEMA, [("order_date", "day")])
    for d in range(1, 4):
        data = pa.table({"order_id": [d * 10, d * 10 + 1], "order_date": [dt.date(2024, 1, d)] * 2,
                         "sales_amount": [1.5, 2.5]}, schema=SCHEMA)
        append_batch(lake, ICEBERG, data, f"b{d}")
    return home


def child(home: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str, dict[str, bool]]:
    """``lakeline --home HOME ARGS`` in a fresh interpreter: exit code, stdout, stderr (without
    the report line) and which modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELINE")}
    p = subprocess.run([sys.executable, "-c", CHILD, "--home", str(home), *args], input=stdin or "",
                       capture_output=True, text=True, timeout=120, env=env)
    lines = p.stderr.splitlines()
    assert lines and lines[-1].startswith("IMPORTED "), p.stderr
    return p.returncode, p.stdout, "\n".join(lines[:-1]), json.loads(lines[-1].removeprefix("IMPORTED "))


# ---- which tables a query names ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@pytest.mark.parametrize(("query", "names"), [
    ("SELECT 1", set()),
    ("SELECT * FROM silver.a x JOIN gold.b y ON x.k = y.k LEFT JOIN silver.c USING (k)",
     {("silver", "a"), ("gold", "b"), ("silver", "c")}),
    ("WITH t AS (SELECT * FROM silver.a), u AS (SELECT * FROM t) SELECT * FROM u", {("silver", "a")}),
    ("SELECT (SELECT max(v) FROM gold.m) FROM silver.n WHERE k IN (SELECT k FROM silver.o) "
     "AND EXISTS (SELECT 1 FROM (SELECT * FROM gold.p) q)",
     {("gold", "m"), ("silver", "n"), ("silver", "o"), ("gold", "p")}),
    ('SELECT * FROM "Silver"."Daily Sales", Gold.Totals', {("silver", "Daily Sales"), ("gold", "Totals")}),
    ('SELECT * FROM retail_silver."orders_silver$snapshots"', {("retail_silver", "orders_silver$snapshots")}),
    ("SELECT * FROM ns.tbl FOR VERSION AS OF 12 JOIN silver.a USING (k)", {("ns", "tbl"), ("silver", "a")}),
    ("SELECT * FROM shipments", set()),  # unqualified: no lake table (DuckDB says so when it runs)
    ("SELECT * FROM read_parquet('x.parquet')", set()),
    # statements DuckDB's serializer does not take: sqlglot reads them
    ("CREATE TABLE t AS SELECT count(*) AS n FROM silver.a; SELECT n FROM t", {("silver", "a")}),
    ("SET threads = 1; SELECT * FROM gold.b", {("gold", "b")}),
    ("PIVOT silver.a ON k USING sum(v)", {("silver", "a")}),
])
def test_named_tables(con, query, names):
    assert named_tables(query, con) == frozenset(names)


@pytest.mark.parametrize("query", [
    "SHOW TABLES", "SELECT * FROM information_schema.tables", "SELECT * FROM duckdb_tables()",
    "SELECT * FROM query_table('silver.a')", "PRAGMA show_tables",
    "selec 1 frm",  # neither parser reads it: every table, and DuckDB's own error when it runs
])
def test_a_query_about_the_catalog_or_unreadable_opens_every_table(con, query):
    assert named_tables(query, con) is None


def test_scope_lists_only_the_named_folder_and_loads_no_specs(lake_home):
    lake = Lake.open(settings(lake_home))
    loaded: list[str] = []

    def specs() -> list:
        loaded.append("specs")
        return []

    found = scope(lake, frozenset({("silver", "shipments")}), specs)
    assert ([t.name for t in found.tables], found.iceberg, loaded) == (["silver.shipments"], False, [])
    assert found.tables[0].files == 2  # one Parquet file per day
    nothing = scope(lake, frozenset(), specs)
    assert (nothing.tables, nothing.iceberg, loaded) == ([], False, [])
    iceberg = scope(lake, frozenset({("retail_silver", "orders_silver")}), specs)
    assert (iceberg.tables, iceberg.iceberg, loaded) == ([], True, [])
    missing = scope(lake, frozenset({("silver", "nope")}), specs)  # maybe a promoted table: ask the specs
    assert (missing.tables, missing.iceberg, loaded) == ([], True, ["specs"])
    every = scope(lake, None, specs)
    assert ([t.name for t in every.tables], every.iceberg) == (["silver.shipments"], True)


# ---- what a query imports, in a fresh interpreter -------------------------------------------------------
def test_select_1_imports_no_iceberg_and_no_pipeline(lake_home):
    code, out, err, imported = child(lake_home, "sql", "SELECT 1 AS one", "--json")
    assert (code, json.loads(out), err) == (0, [{"one": 1}], "")
    assert not any(imported.values()), imported


def test_a_parquet_table_query_imports_no_iceberg_and_no_pipeline(lake_home):
    code, out, err, imported = child(
        lake_home, "sql", "SELECT count(*) AS n, sum(weight_kg) AS w, count(DISTINCT dt) AS days "
                          "FROM silver.shipments", "--json")
    assert (code, json.loads(out), err) == (0, [{"n": 4, "w": 10.75, "days": 2}], "")
    assert not any(imported.values()), imported


def test_an_iceberg_table_query_opens_the_catalog_and_answers(lake_home):
    code, out, _, imported = child(
        lake_home, "sql", f"SELECT count(*) AS n, sum(sales_amount) AS s FROM {ICEBERG} "
                          "WHERE order_date >= DATE '2024-01-02'", "--json")
    assert (code, json.loads(out)) == (0, [{"n": 4, "s": 8.0}])
    assert imported["pyiceberg"] and not imported["lakeline.pipelines.registry"]


def test_a_join_of_parquet_and_iceberg_and_a_metadata_table(lake_home):
    code, out, _, _ = child(
        lake_home, "sql", f"WITH o AS (SELECT count(*) AS n FROM {ICEBERG}) "
                          "SELECT o.n AS orders, count(*) AS shipments FROM o, silver.shipments GROUP BY o.n",
        "--json")
    assert (code, json.loads(out)) == (0, [{"orders": 6, "shipments": 4}])
    code, out, _, _ = child(lake_home, "sql", 'SELECT count(*) AS n FROM retail_silver."orders_silver$snapshots"',
                            "--json")
    assert (code, json.loads(out)) == (0, [{"n": 3}])


def test_rejects_are_read_without_the_pipelines(home):
    lake = Lake.open(settings(home))
    land(lake, "shipments/dirty.jsonl", b"\n".join([
        orjson.dumps(rec(shipment_id="shp_000000000001")), b'{"record_type": "shipments", "event_time": oops}',
        orjson.dumps(rec(weight_kg="heavy"))]) + b"\n")
    assert run(lake.settings)["rejected"] == 2
    code, out, _, imported = child(home, "sql", "SELECT line_no, reason_code FROM quarantine.rejects ORDER BY line_no",
                                   "--json")
    assert (code, json.loads(out)) == (0, [{"line_no": 2, "reason_code": "MALFORMED_JSON"},
                                           {"line_no": 3, "reason_code": "TYPE_ERROR"}])
    assert not any(imported.values()), imported


def test_empty_rejects_of_a_lake_without_any(lake_home):
    code, out, _, _ = child(lake_home, "sql", "SELECT count(*) AS n FROM quarantine.rejects", "--json")
    assert (code, json.loads(out)) == (0, [{"n": 0}])


def test_a_statement_only_sqlglot_reads_opens_its_table(lake_home):
    code, out, _, imported = child(
        lake_home, "sql", "CREATE TABLE t AS SELECT count(*) AS n FROM silver.shipments; SELECT n * 10 AS n FROM t",
        "--json")
    assert (code, json.loads(out)) == (0, [{"n": 40}])
    assert imported["sqlglot"] and not imported["pyiceberg"] and not imported["lakeline.pipelines.registry"]


def test_an_unknown_table_is_the_same_clear_error_as_before(lake_home):
    # the first scope misses it, so every table is opened and DuckDB names the lake's tables
    code, out, err, _ = child(lake_home, "sql", "SELECT * FROM silver.shipmentz")
    assert (code, out) == (2, "")
    assert err == ('error: SQL error: Catalog Error: Table with name shipmentz does not exist!\n'
                   'Did you mean "shipments"?')


def test_a_catalog_query_sees_every_lake_table(lake_home):
    code, out, _, _ = child(lake_home, "sql", "SELECT table_schema || '.' || table_name AS t FROM "
                                              "information_schema.tables WHERE table_schema <> 'main' ORDER BY t",
                            "--json")
    assert code == 0
    assert [r["t"] for r in json.loads(out)] == ["quarantine.rejects", "silver.shipments"]


# ---- SQL on standard input -----------------------------------------------------------------------------
def test_sql_from_standard_input(lake_home):
    code, out, _, imported = child(lake_home, "sql", "--json",
                                   stdin="SELECT count(*) AS n\nFROM silver.shipments\n")
    assert (code, json.loads(out)) == (0, [{"n": 4}])
    assert not imported["pyiceberg"]
    code, out, _, _ = child(lake_home, "sql", stdin="SELECT 6 * 7 AS answer;\n")
    assert code == 0 and "answer" in out and "42" in out


def test_empty_standard_input_is_a_usage_error(lake_home):
    code, out, err, _ = child(lake_home, "sql", stdin="  \n")
    assert (code, out) == (2, "")
    assert err == ("error: no query: give QUERY, pipe SQL on standard input, or run `lakeline sql` on a "
                   "terminal for the interactive shell")


def test_help_explains_the_shell_and_standard_input(lake_home):
    p = subprocess.run([str(LAKELINE), "sql", "--help"], capture_output=True, text=True, timeout=60)
    text = " ".join(p.stdout.split())
    assert "Without QUERY: on a terminal, an interactive SQL shell" in text
    assert 'otherwise the SQL is read from standard input: echo "SELECT 1" | lakeline sql' in text
    assert "Only the tables QUERY names are opened" in text


# ---- the shell, line by line ----------------------------------------------------------------------------
def test_statements_split_on_semicolons_and_dot_commands():
    prompts: list[str] = []
    lines = [".tables", "SELECT 1", "", "  + 1;", "SELECT 'a;b'", CANCEL, "SELECT 2; ", "  ", "SELECT 3"]
    assert list(statements(lines, prompts.append)) == [
        ".tables", "SELECT 1\n\n  + 1;", "SELECT 2; ", "SELECT 3"]
    assert prompts == [PROMPT, PROMPT, CONTINUATION, CONTINUATION, PROMPT, CONTINUATION, PROMPT, PROMPT,
                       PROMPT, CONTINUATION]


def test_shell_tables_query_error_and_going_on(lake_home, capsys):
    session = Session(Lake.open(settings(lake_home)))
    capsys.readouterr()
    repl(session, [".tables"])
    assert _cells(capsys.readouterr().out) == [["table"], ["silver.shipments"], [ICEBERG]]
    repl(session, ["SELECT count(*) AS n,", "  sum(weight_kg) AS w", "FROM silver.shipments;",
                   "SELECT * FROM silver.nope;", "SELECT 7 AS seven;"])
    out, err = capsys.readouterr()
    assert _cells(out) == [["n", "w"], ["4", "10.75"], ["seven"], ["7"]]
    assert err.startswith("error: SQL error: Catalog Error: Table with name nope does not exist!")


def test_shell_iceberg_schema_cancel_quit_and_unknown_command(lake_home, capsys):
    session = Session(Lake.open(settings(lake_home)))
    capsys.readouterr()
    repl(session, [f"SELECT count(*) AS n FROM {ICEBERG} FOR VERSION AS OF 1;"])
    assert capsys.readouterr().err == f"error: table {ICEBERG} has no snapshot 1\n"
    repl(session, [f".schema {ICEBERG}", "SELECT 1 +", CANCEL, f"SELECT count(*) AS n FROM {ICEBERG};",
                   ".bogus", ".quit", "SELECT 99;"])
    out, err = capsys.readouterr()
    assert _cells(out) == [["column", "type"], ["order_id", "BIGINT"], ["order_date", "DATE"],
                           ["sales_amount", "DOUBLE"], ["n"], ["6"]]
    assert err == "error: unknown command '.bogus'; .help lists the commands\n"


def test_shell_help_and_schema_without_a_table(lake_home, capsys):
    session = Session(Lake.open(settings(lake_home)))
    capsys.readouterr()
    repl(session, [".help", ".schema", ".schema silver.nope", "SELECT 5 AS five;"])
    out, err = capsys.readouterr()
    assert out.startswith(HELP + "\n") and _cells(out) == [["five"], ["5"]]
    assert err.splitlines()[0] == "error: .schema needs a table: .schema silver.shipments (.tables lists them)"
    assert err.splitlines()[1] == "error: SQL error: Catalog Error: Table with name nope does not exist!"


def test_shell_completes_keywords_tables_and_columns(lake_home):
    session = Session(Lake.open(settings(lake_home)))
    assert session.complete("silver.sh") == ["silver.shipments"]
    assert session.complete("weight") == ["weight_kg"]
    assert session.complete("retail_") == ["retail_silver", ICEBERG]
    assert {"SELECT", "select"} <= set(session.complete("SEL") + session.complete("sel"))
    assert session.complete("") == []


def _cells(out: str) -> list[list[str]]:
    """The cells of the rich tables in ``out``, row by row (borders dropped)."""
    rows = []
    for line in out.splitlines():
        if line[:1] in ("┃", "│"):
            rows.append([c.strip() for c in line.strip("┃│").replace("┃", "│").split("│")])
    return rows


# ---- the shell on a terminal ------------------------------------------------------------------------------
def test_shell_on_a_pseudo_terminal_with_history(lake_home):
    main, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELINE")}
    env.update(TERM="dumb", COLUMNS="120")
    p = subprocess.Popen([str(LAKELINE), "--home", str(lake_home), "sql"], stdin=secondary, stdout=secondary,
                         stderr=secondary, env=env, close_fds=True)
    os.close(secondary)
    screen = b""
    try:
        screen += _until(main, b"lakeline> ")
        os.write(main, b".tables\n")
        screen += _until(main, b"lakeline> ")
        os.write(main, b"SELECT 40 + 2\n")
        screen += _until(main, b"...> ")
        os.write(main, b"  AS answer;\n")
        screen += _until(main, b"lakeline> ")
        os.write(main, b"SELECT * FROM gold.nope;\n")
        screen += _until(main, b"lakeline> ")
        os.write(main, b"\x04")  # Ctrl-D
        p.wait(timeout=60)
        screen += _drain(main)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(main)
    text = screen.decode()
    assert p.returncode == 0, text
    assert "silver.shipments" in text and ICEBERG in text
    assert "answer" in text and "42" in text
    assert "error: SQL error: Catalog Error: Table with name nope does not exist!" in text
    history = (lake_home / ".lakeline_sql_history").read_text().splitlines()
    assert history[-4:] == [".tables", "SELECT 40 + 2", "  AS answer;", "SELECT * FROM gold.nope;"]


def _until(fd: int, marker: bytes, timeout: float = 60) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while not out.endswith(marker):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no {marker!r} on the terminal; got {out.decode(errors='replace')}"
        out += os.read(fd, 4096)
    return out


def _drain(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 0.5)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        out += chunk
    return out
