"""The ``totesys`` pipeline (seed 001, specs §2): incremental OLTP extraction into raw-zone
JSON-lines packets, a star schema in the gold zone, and a warehouse load.

Modules: :mod:`~lakeline.totesys.schema` (the source tables), :mod:`~lakeline.totesys.source`
(connector), :mod:`~lakeline.totesys.extract` (packets and watermarks),
:mod:`~lakeline.totesys.star` (gold star schema), :mod:`~lakeline.totesys.warehouse` (load).
"""

#: Where the pipeline keeps its parameters (watermarks, packet ids) in the parameter store.
PARAM_ROOT = "/lakeline/totesys"
