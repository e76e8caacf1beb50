"""``lakeline lineage``: show a root's tree, trace a node back to its raw file, list roots,
export OpenLineage events."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from lakeline.cli.context import open_lake
from lakeline.console import emit_json
from lakeline.errors import NotFoundError, UsageError
from lakeline.lake import Lake
from lakeline.lineage.openlineage import export_root
from lakeline.lineage.tree import FANOUT, build_tree
from lakeline.ports.lineage_model import is_failure


def _console() -> Console:
    """stdout for people: a terminal's width, or wide lines when piped (paths and ids are
    long, and a cropped id cannot be copied into `lineage trace`)."""
    console = Console(soft_wrap=True)
    return console if console.is_terminal else Console(soft_wrap=True, width=1000)


def _lake() -> Lake:
    return open_lake()


def _attrs_text(attrs: dict[str, Any], width: int = 80) -> str:
    if not attrs:
        return ""
    text = ", ".join(f"{k}={v}" for k, v in attrs.items() if v is not None)
    return text if len(text) <= width else text[: width - 1] + "…"


def _label(node: dict[str, Any]) -> Text:
    style = "bold red" if node["failed"] else "bold"
    label = Text(node["action_taken"], style=style)
    label.append(f"  {node['storage_location'] or '-'}", style="red" if node["failed"] else "")
    label.append(f"  {node['node_id']}", style="dim")
    extra = _attrs_text(node["attrs"])
    if extra:
        label.append(f"  ({extra})", style="red" if node["failed"] else "cyan")
    return label


def _more(tree: Tree, more: dict[str, int]) -> None:
    for action, n in more.items():
        tree.add(Text(f"… and {n} more {action}", style="red" if is_failure(action) else "dim"))


def render(shown: dict[str, Any]) -> Tree:
    """The rich tree of :func:`build_tree`'s result (failed branches in red)."""
    title = Text(f"root {shown['root_id']}", style="bold")
    title.append(f"  {shown['nodes']} nodes", style="dim")
    if shown["failed"]:
        title.append(f", {shown['failed']} failed", style="bold red")
    tree = Tree(title)

    def add(parent: Tree, nodes: list[dict[str, Any]], more: dict[str, int]) -> None:
        for node in nodes:
            branch = parent.add(_label(node), guide_style="red" if node["failed"] else "")
            add(branch, node["children"], node["more"])
        _more(parent, more)

    add(tree, shown["children"], shown["more"])
    return tree


@click.group()
def lineage() -> None:
    """The lineage ledger: which file became which batches and records, and back.

    \b
    lakeline lineage list                 recent roots (one per landed object or batch run)
    lakeline lineage show ROOT_ID         the tree, counts per action, failures in red
    lakeline lineage trace NODE_ID        from a record or file back to its raw file
    lakeline lineage export ROOT_ID --file events.jsonl   OpenLineage run events
    """


@lineage.command("show")
@click.argument("root_id")
@click.option("--fanout", type=click.IntRange(min=0), default=FANOUT, show_default=True,
              help="Children of one action shown under a node (0: all of them).")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON.")
def show_cmd(root_id: str, fanout: int, as_json: bool) -> None:
    """The tree of ROOT_ID with node counts per action; failed branches in red."""
    lake = _lake()
    shown = build_tree(lake.lineage, root_id, fanout)
    if as_json:
        emit_json(shown)
        return
    console = _console()
    console.print(render(shown))
    counts = Table(title="nodes per action")
    counts.add_column("action")
    counts.add_column("nodes", justify="right")
    for action, n in shown["counts"].items():
        counts.add_row(Text(action, style="red" if is_failure(action) else ""), str(n))
    console.print(counts)


@lineage.command("trace")
@click.argument("node_id")
@click.option("--root", "root_id", help="The root the node belongs to (default: its latest).")
@click.option("--json", "as_json", is_flag=True, help="Print the path as JSON.")
def trace_cmd(node_id: str, root_id: str | None, as_json: bool) -> None:
    """The path from NODE_ID (a record, batch or file) back to its root's raw file."""
    lake = _lake()
    path = lake.lineage.trace(node_id, root_id)
    if not path:
        where = f" in root {root_id}" if root_id else ""
        raise NotFoundError(f"no lineage node {node_id}{where}")
    if as_json:
        emit_json({"node_id": node_id, "root_id": path[0].root_id, "complete": path[-1].is_first,
                   "path": [n.to_dict() for n in path]})
        return
    console = _console()
    console.print(Text(f"trace of {node_id} (root {path[0].root_id}): {len(path)} nodes, "
                       "from the node back to the raw file", style="bold"))
    for i, n in enumerate(path):
        line = Text(f"{'  ' * i}{'└─ ' if i else ''}")
        line.append(n.action_taken, style="bold red" if n.failed else "bold")
        line.append(f"  {n.storage_location or '-'}", style="red" if n.failed else "")
        line.append(f"  node {n.node_id} at {n.recorded_at}", style="dim")
        extra = _attrs_text(n.attrs)
        if extra:
            line.append(f"  ({extra})", style="red" if n.failed else "cyan")
        console.print(line)
    if not path[-1].is_first:
        click.echo(f"note: parent {path[-1].parent_id} was never recorded; the trace ends there", err=True)


@lineage.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_cmd(limit: int, as_json: bool) -> None:
    """Recent roots, newest first, with their first node and node counts."""
    lake = _lake()
    roots = lake.lineage.roots(limit)
    if as_json:
        emit_json({"roots": roots})
        return
    table = Table(title="lineage roots")
    for name in ("root", "started", "first action", "storage location"):
        table.add_column(name, no_wrap=True)
    table.add_column("nodes", justify="right")
    table.add_column("failed", justify="right", style="red")
    for r in roots:
        table.add_row(r["root_id"], r["recorded_at"], r["first_node"]["action_taken"],
                      r["first_node"]["storage_location"], str(r["nodes"]), str(r["failed"] or ""))
    _console().print(table)


@lineage.command("export")
@click.argument("root_id")
@click.option("--file", "file", help="Append the events to this JSON-lines file (default: [lineage] "
              "openlineage_file).")
@click.option("--url", help="POST the events here (default: [lineage] openlineage_url).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export_cmd(root_id: str, file: str | None, url: str | None, as_json: bool) -> None:
    """Send ROOT_ID's OpenLineage run events (START, COMPLETE or FAIL)."""

    lake = _lake()
    if file == "":
        raise UsageError("--file needs a path")
    out = export_root(lake.lineage, lake.settings, root_id, file=file, url=url)
    if as_json:
        emit_json(out)
    else:
        sinks = " and ".join(x for x in (out["file"], out["url"]) if x)
        click.echo(f"{' + '.join(out['events'])} for root {root_id} → {sinks}")
