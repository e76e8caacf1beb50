"""Every model file with what is wrong with it and how its last materialisation went
(``lakeline models list`` and ``validate``): unlike :func:`~lakeline.models.run.run_models`,
a bad file is reported next to the good ones instead of stopping everything."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lakeline.errors import ConfigError
from lakeline.lake import Lake
from lakeline.models.inputs import STATE_TABLE, known_tables
from lakeline.models.plan import plan, problems
from lakeline.models.spec import Model, model_files, parse_model
from lakeline.tables.schema import TableSpec


@dataclass
class Checked:
    """The models of a lake: the valid ones, and a message per model (file stem) that is not."""

    models: list[Model] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    #: the run order when every model is valid (empty otherwise).
    order: list[str] = field(default_factory=list)

    def raise_problems(self) -> None:
        """:class:`ConfigError` with every problem, one a line (nothing when all are valid)."""
        if self.problems:
            raise ConfigError("\n".join(self.problems[name] for name in sorted(self.problems)))


def check_models(lake: Lake, tables: Sequence[TableSpec] = ()) -> Checked:
    """Parse every model file of the lake and check it against the lake's tables."""
    out = Checked()
    for path in model_files(lake.settings.home):
        try:
            out.models.append(parse_model(path))
        except ConfigError as exc:
            out.problems[path.stem] = str(exc)
    known = known_tables(lake, tables, out.models)
    out.problems.update(problems(out.models, known))
    if not out.problems:
        out.order = [m.name for m in plan(out.models, known)]
    return out


def model_status(lake: Lake, tables: Sequence[TableSpec] = ()) -> list[dict[str, Any]]:
    """One entry per model file, by name: ``name, file, inputs, status, rows, materialised_at,
    error``. ``status``: INVALID (``error`` says why), NEW (never materialised), or the last
    attempt's SUCCEEDED / FAILED (``error``: the failure; the table keeps its previous data)."""
    checked = check_models(lake, tables)
    inputs = {m.name: list(m.inputs) for m in checked.models}
    files = {p.stem: str(p) for p in model_files(lake.settings.home)}
    out = []
    for name in sorted(files):
        item = lake.state.get(STATE_TABLE, name)
        data = item.data if item is not None else {}
        problem = checked.problems.get(name)
        status = "INVALID" if problem else str(data.get("status") or "NEW")
        out.append({"name": name, "file": files[name], "inputs": inputs.get(name, []), "status": status,
                    "rows": data.get("rows"), "materialised_at": data.get("materialised_at"),
                    "error": problem or data.get("error")})
    return out
