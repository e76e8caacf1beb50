"""The ``totesys`` pipeline (seed 001, specs §2): incremental OLTP extraction into raw-zone
JSON-lines packets, a star schema in the gold zone, and a warehouse load.

Modules: :mod:`~lakeline.pipelines.totesys.schema` (the source tables),
:mod:`~lakeline.pipelines.totesys.source` (connector), :mod:`~lakeline.pipelines.totesys.extract`
(packets and watermarks), :mod:`~lakeline.pipelines.totesys.star` (gold star schema),
:mod:`~lakeline.pipelines.totesys.warehouse` (load), :mod:`~lakeline.pipelines.totesys.pipeline`
(the pipeline object).
"""

from __future__ import annotations
