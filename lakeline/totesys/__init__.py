"""The ``totesys`` pipeline (seed 001, specs §2): incremental OLTP extraction into raw-zone
JSON-lines packets, a star schema in the gold zone, and a warehouse load.

Modules: :mod:`~lakeline.totesys.schema` (the source tables), :mod:`~lakeline.totesys.source`
(connector), :mod:`~lakeline.totesys.extract` (packets and watermarks),
:mod:`~lakeline.totesys.star` (gold star schema), :mod:`~lakeline.totesys.warehouse` (load).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeline.ports.params import ParameterStore

#: Where the pipeline keeps its parameters (watermarks, packet ids) in the parameter store.
PARAM_ROOT = "/lakeline/totesys"


def in_use(params: ParameterStore) -> bool:
    """True once `lakeline extract` has written any totesys parameter (checked before the
    totesys modules, which load SQLAlchemy, are imported)."""
    return bool(params.get_by_path(PARAM_ROOT))
