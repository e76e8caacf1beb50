"""The ``shipments`` reference pipeline (seed 002, specs §3)."""

from __future__ import annotations

from lakeline.pipelines.base import Field, RecordType, StreamPipeline

_COMMON = (Field("record_type"), Field("event_time", "timestamp"))

SHIPMENTS = StreamPipeline(
    name="shipments",
    record_types=(
        RecordType(
            "shipments",
            (
                *_COMMON,
                Field("shipment_id"),
                Field("origin"),
                Field("destination"),
                Field("carrier"),
                Field("weight_kg", "float64"),
            ),
        ),
        RecordType(
            "tracking_events",
            (*_COMMON, Field("shipment_id"), Field("status"), Field("city")),
        ),
        RecordType(
            "invoice_lines",
            (
                *_COMMON,
                Field("invoice_id"),
                Field("sku"),
                Field("quantity", "int64"),
                Field("unit_price", "float64"),
                Field("line_total", "float64"),
            ),
        ),
    ),
)
