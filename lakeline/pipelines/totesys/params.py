"""Where the totesys pipeline keeps its watermarks and packet ids (the parameter store)."""

from __future__ import annotations

from lakeline.ports.params import ParameterStore

#: Where the pipeline keeps its parameters (watermarks, packet ids) in the parameter store.
PARAM_ROOT = "/lakeline/totesys"


def in_use(params: ParameterStore) -> bool:
    """True once `lakeline extract` has written any totesys parameter (checked before the
    totesys modules, which load SQLAlchemy, are imported)."""
    return bool(params.get_by_path(PARAM_ROOT))
