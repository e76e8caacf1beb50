"""MkDocs hooks (mkdocs.yml ``hooks:``): the generated references, built from the code on every
build so they cannot drift — every configuration key from the settings dataclasses (name,
type, default, meaning from its ``#:`` comment, environment variable), the reject reason codes
and the error tree. A page asks for one with a marker line ``<!-- generated: NAME -->``."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from typing import Any

from lakeline import errors, reasons
from lakeline.config import _SECTIONS

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


def pipeline_settings_classes() -> dict[str, type[Any]]:
    """``[pipelines.<name>]`` settings dataclasses: the reference pipelines' own, and the one of a
    declared pipeline (as ``<name>``)."""
    import importlib

    from lakeline.pipelines.declared import DeclaredSettings
    from lakeline.pipelines.registry import BUILTINS

    builtins = [getattr(importlib.import_module(m), a) for m, _, a in (b.partition(":") for b in BUILTINS)]
    found = {p.name: p.settings_class for p in builtins if p.settings_class is not None}
    found["<name>"] = DeclaredSettings
    return found


def field_comments(cls: type[Any]) -> dict[str, str]:
    """field name → its meaning: the ``#:`` comment lines above it, else its trailing comment."""
    lines, _ = inspect.getsourcelines(cls)
    tree = ast.parse(inspect.getsource(cls))
    cdef = tree.body[0]
    assert isinstance(cdef, ast.ClassDef)
    out: dict[str, str] = {}
    for node in cdef.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        i = node.lineno - 1
        above: list[str] = []
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#:"):
            above.insert(0, lines[j].strip()[2:].strip())
            j -= 1
        trailing = lines[i].split("  # ", 1)[1].strip() if "  # " in lines[i] else ""
        out[node.target.id] = " ".join(above) or trailing
    return out


def config_keys() -> list[dict[str, str]]:
    """Every configuration key: section, key, type, default, meaning, environment variable."""
    rows = []
    sections = [(s, cls, f"LAKELINE__{s.upper()}__") for s, cls in _SECTIONS.items()]
    sections += [(f"pipelines.{n}", cls, f"LAKELINE__PIPELINES__{n.upper()}__")
                 for n, cls in pipeline_settings_classes().items()]
    for section, cls, env in sections:
        meaning = field_comments(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "")
            rows.append({"section": section, "key": f.name, "type": getattr(f.type, "__name__", str(f.type)),
                         "default": repr(default) if isinstance(default, str) else str(default).lower()
                         if isinstance(default, bool) else str(default),
                         "meaning": meaning.get(f.name, ""), "env": env + f.name.upper()})
    return rows


def _cell(text: str) -> str:
    """Text for a markdown table cell: pipes escaped, and ``<``/``>`` outside code spans as
    entities (``<lake.name>`` would be read as an HTML tag)."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def configuration() -> str:
    out = []
    section = None
    for r in config_keys():
        if r["section"] != section:
            section = r["section"]
            cls = _SECTIONS.get(section) or pipeline_settings_classes()[section.split(".", 1)[1]]
            doc = inspect.getdoc(cls)
            out += ["", f"## `[{section}]`", "", (doc or "").split("\n\n")[0].replace("\n", " "), "",
                    "| key | type | default | meaning | environment variable |", "|---|---|---|---|---|"]
        out.append(f"| `{r['key']}` | {r['type']} | `{_cell(r['default'])}` | {_cell(r['meaning'])} | "
                   f"`{r['env']}` |")
    return "\n".join(out)


def reject_reasons() -> str:
    source = inspect.getsource(reasons)
    comments = dict(re.findall(r'^([A-Z_]+) = "[A-Z_]+"(?:\s+# (.*))?$', source, re.M))
    rows = ["| reason code | meaning |", "|---|---|"]
    rows += [f"| `{code}` | {_cell(comments.get(code) or '')} |" for code in reasons.ALL]
    return "\n".join(rows)


def error_tree() -> str:
    def walk(cls: type[BaseException], depth: int) -> list[str]:
        doc = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        line = f"{'    ' * depth}- `{cls.__name__}` — {doc}"
        subs = [c for c in cls.__subclasses__() if c.__module__ == errors.__name__]
        return [line] + [x for c in subs for x in walk(c, depth + 1)]
    return "\n".join(walk(errors.LakelineError, 0))


def on_config(config: Any) -> Any:
    """Register ``lakeline_docs_cli.cli`` for the CLI page's ``mkdocs-click`` directive: the
    ``lakeline`` group with every command loaded (lakeline imports most commands when they run,
    and mkdocs-click lists only a group's loaded ones)."""
    import sys
    import types

    import click

    from lakeline.cli.main import cli

    ctx = click.Context(cli, info_name="lakeline")
    full = click.Group("lakeline", help=cli.help, params=cli.params, context_settings=cli.context_settings,
                       commands={n: c for n in cli.list_commands(ctx) if (c := cli.get_command(ctx, n))})
    module = types.ModuleType("lakeline_docs_cli")
    module.cli = full  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    return config


GENERATORS = {"configuration": configuration, "reject-reasons": reject_reasons, "errors": error_tree}


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda m: GENERATORS[m.group(1)](), markdown)
