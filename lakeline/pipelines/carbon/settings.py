"""``[pipelines.carbon]``: the carbon pipeline's settings."""

from __future__ import annotations

from dataclasses import dataclass

from lakeline.config import Settings, check, pipeline_settings

NAME = "carbon"


@dataclass(frozen=True)
class CarbonSettings:
    """``factors`` is a factor table CSV (empty: the one packaged with lakeline; relative paths
    are under the home), ``batch_size`` records per batch, ``max_concurrency`` batches
    calculated at once (the Map state's MaxConcurrency), ``store_results`` also keeps a
    copy of each result in the state store keyed by activity_event_id, written in bulk per
    batch (off by default: ``result_of`` looks results up in ``gold.emissions``)."""

    #: the emission factor table CSV (empty: the one packaged with lakeline; a relative path is under the
    #: home)
    factors: str = ""
    #: records per batch of the workflow's Map (1..1,000,000)
    batch_size: int = 20_000
    #: batches calculated at once: the Map state's MaxConcurrency (1..40)
    max_concurrency: int = 4
    #: also keep each result in the state store keyed by activity_event_id (off: `result_of` reads
    #: `gold.emissions`)
    store_results: bool = False


def carbon_settings(settings: Settings) -> CarbonSettings:
    """The validated ``[pipelines.carbon]`` settings of a lake."""
    found = pipeline_settings(settings, NAME, CarbonSettings)
    check(1 <= found.batch_size <= 1_000_000, settings, NAME, "batch_size", "must be 1..1000000")
    check(1 <= found.max_concurrency <= 40, settings, NAME, "max_concurrency", "must be 1..40")
    return found
