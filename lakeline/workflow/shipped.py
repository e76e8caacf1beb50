"""The generic workflow definitions lakeline ships, and the export of any definition for Step
Functions. Pipelines ship their own (:meth:`lakeline.pipelines.base.Pipeline.workflows`)."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import orjson

from lakeline.errors import UsageError

_SUFFIX = ".asl.json"


def names() -> list[str]:
    """Names of the shipped workflows."""
    folder = resources.files("lakeline.workflow") / "definitions"
    return sorted(p.name.removesuffix(_SUFFIX) for p in folder.iterdir() if p.name.endswith(_SUFFIX))


def definition(name: str) -> dict[str, Any]:
    """A shipped definition by name."""
    if name not in names():
        raise UsageError(f"no workflow {name!r}; shipped workflows: {', '.join(names())}")
    text = (resources.files("lakeline.workflow") / "definitions" / f"{name}{_SUFFIX}").read_text("utf-8")
    data: dict[str, Any] = orjson.loads(text)
    return data


def export(machine: dict[str, Any]) -> dict[str, Any]:
    """A definition for Step Functions: every ``FunctionName`` becomes a SAM
    ``DefinitionSubstitutions`` placeholder ``${<CamelCase>Arn}`` (listed under
    ``substitutions``) that the template maps to the deployed function's ARN."""
    text = orjson.dumps(machine).decode()
    subs: dict[str, str] = {}

    def sub(m: re.Match[str]) -> str:
        fn = m.group(1)
        key = "".join(part.capitalize() for part in fn.split("-")) + "Arn"
        subs[key] = fn
        return f'"FunctionName":"${{{key}}}"'

    text = re.sub(r'"FunctionName":"([a-z0-9-]+)"', sub, text)
    return {"definition": orjson.loads(text), "substitutions": subs}
