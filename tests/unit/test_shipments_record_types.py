"""The shipments pipeline names its generator's record types without importing the generator
(which loads numpy and pyarrow): a run does not pay for `lakeline gen`."""

from __future__ import annotations


def test_the_shipments_pipeline_names_the_generators_record_types() -> None:
    from lakeline.pipelines import shipments
    from lakeline.pipelines.shipments import gen

    assert shipments.RECORD_TYPES == gen.RECORD_TYPES
