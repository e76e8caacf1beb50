"""The lineage ledger: which file became which batches and records, and back.

- :mod:`lakeline.ports.lineage_model` — :class:`Node`, :data:`ACTIONS`, id helpers;
- :mod:`lakeline.ports.lineage` — the :class:`~lakeline.ports.lineage.Ledger` port (specs §4
  request contract, queries, trace); backends in ``lakeline.adapters.{local,aws}.lineage``;
- :mod:`lakeline.lineage.hooks` — the guarded calls the pipelines make;
- :mod:`lakeline.lineage.openlineage` — optional export of OpenLineage run events.

``Lake.lineage`` opens the lake's ledger.
"""

from lakeline.ports.lineage_model import ACTIONS, Node, derived_id, is_failure, new_id, now_iso

__all__ = ["ACTIONS", "Node", "derived_id", "is_failure", "new_id", "now_iso"]
