"""Check models against the lake's tables and order them so a model runs after the models it reads.

A model may read any table the lake knows and the gold table of any other model
(``gold.<model>``). It may not read itself or take part in a cycle, and its name may not be that
of a table a pipeline writes (``gold.NAME`` would be two tables at once).
"""

from __future__ import annotations

import graphlib
import itertools
from collections.abc import Iterable, Sequence

from lakeline.errors import ConfigError
from lakeline.models.spec import Model, where


def problems(models: Sequence[Model], known_tables: Iterable[str]) -> dict[str, str]:
    """Model name → what is wrong with it, for every model that cannot run (empty: all fine).

    ``known_tables``: the lake's tables other than the models' own gold tables."""
    known = {t.lower() for t in known_tables}
    outputs = {m.table: m for m in models}
    available = known | set(outputs)
    out: dict[str, str] = {}
    for m in sorted(models, key=lambda m: m.name):
        if m.table in known:
            out[m.name] = (f"{where(m.path)}: model {m.name} would replace {m.table}, a table a pipeline "
                           f"writes; rename the file (the file name is the table name)")
            continue
        missing = [t for t in m.inputs if t not in available]
        if missing:
            ref = m.ref(missing[0])
            at = where(m.path, ref.line, ref.col) if ref else where(m.path)
            out[m.name] = (f"{at}: model {m.name} reads {missing[0]}, which does not exist; "
                           f"tables: {', '.join(sorted(available)) or 'none yet'}")
    for cycle in _cycles([m for m in models if m.name not in out]):
        first = outputs[f"gold.{cycle[0]}"]
        ref = first.ref(f"gold.{cycle[1]}")
        at = where(first.path, ref.line, ref.col) if ref else where(first.path)
        reads = ", ".join(f"{a} reads gold.{b}" for a, b in itertools.pairwise(cycle))
        for name in set(cycle):
            out[name] = f"{at}: models form a cycle: {reads}; a model cannot read itself, even through others"
    return out


def _edges(models: Sequence[Model]) -> dict[str, set[str]]:
    """Model → the models it reads."""
    names = {m.name for m in models}
    return {m.name: {t.removeprefix("gold.") for t in m.inputs
                     if t.startswith("gold.") and t.removeprefix("gold.") in names} for m in models}


def _cycles(models: Sequence[Model]) -> list[list[str]]:
    """Each cycle as ``[a, b, …, a]`` where every model reads the next one."""
    graph = _edges(models)
    found: list[list[str]] = []
    while graph:
        try:
            tuple(graphlib.TopologicalSorter(graph).static_order())
            break
        except graphlib.CycleError as exc:
            # graphlib lists each node before the node that depends on it: reversed, each reads the next
            cycle = list(reversed(exc.args[1]))
            start = cycle.index(min(cycle[:-1]))  # start at the smallest name: the same cycle reads the same
            cycle = cycle[start:-1] + cycle[:start] + [cycle[start]]
            found.append(cycle)
            graph = {n: deps - set(cycle) for n, deps in graph.items() if n not in cycle}
    return found


def plan(models: Sequence[Model], known_tables: set[str]) -> list[Model]:
    """The models in dependency order (a model after every model it reads; ties by name).

    Raises :class:`ConfigError` for the first model (by name) that reads a table that does not
    exist, takes part in a cycle, or would replace a table a pipeline writes."""
    bad = problems(models, known_tables)
    if bad:
        raise ConfigError(bad[min(bad)])
    by_name = {m.name: m for m in models}
    sorter = graphlib.TopologicalSorter(_edges(models))
    sorter.prepare()
    ordered: list[Model] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered.extend(by_name[n] for n in ready)
        sorter.done(*ready)
    return ordered
