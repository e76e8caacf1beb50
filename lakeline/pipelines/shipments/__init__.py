"""The ``shipments`` reference pipeline (seed 002, specs §3).

It is a declared pipeline: ``shipments.toml`` beside this module says everything about its
data (three record types routed by ``record_type``, their fields, the specs §3 quality
rules), exactly as a user's ``HOME/pipelines/NAME.toml`` does. This module adds only its
fake-data generator (:mod:`lakeline.pipelines.shipments.gen`).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from lakeline.errors import UsageError
from lakeline.pipelines.base import Generator, GenOptions
from lakeline.pipelines.declared import DeclaredPipeline, parse

FILE = "shipments.toml"
#: what ``lakeline gen`` makes for this pipeline (:data:`lakeline.pipelines.shipments.gen.RECORD_TYPES`;
#: the generator module itself loads numpy and pyarrow, so a run does not import it)
RECORD_TYPES = ("shipments", "tracking_events", "invoice_lines")


def _generate(target: str, o: GenOptions) -> str:
    from lakeline.pipelines.shipments import gen  # heavy: numpy, pyarrow (only `lakeline gen` needs them)

    if o.out is None or o.count is None:
        raise UsageError("--out and --count are required")
    n = gen.write(target, o.count, Path(o.out), fmt="json" if o.fmt == "json" else "jsonl", seed=o.seed,
                  days=o.days)
    return f"wrote {n} {target} records to {o.out}"


def pipeline() -> DeclaredPipeline:
    """The shipments pipeline, read from its packaged pipeline file."""
    text = (resources.files(__name__) / FILE).read_text("utf-8")
    return parse("shipments", tomllib.loads(text), f"lakeline/pipelines/shipments/{FILE}", gen=Generator(
        RECORD_TYPES, _generate,
        "shipments, tracking_events, invoice_lines: JSON lines (--format json: one array) with the "
        "value domains of seed 002, event_time spread over --days"))


SHIPMENTS = pipeline()
