"""Batch pipelines: runs over sets of landed files, a promotion gate and promotion.

- :mod:`lakeline.batch.transactions` — the transactions pipeline (validate, enrich, write a run)
- :mod:`lakeline.batch.validate` — the DuckDB validation pass and its reason codes
- :mod:`lakeline.batch.runs` — run ids, run folders, ``_SUCCESS`` markers, run listing
- :mod:`lakeline.batch.gate` — ``read_run_summary``: may a run be promoted?
- :mod:`lakeline.batch.promote` — ``promote`` into ``current/`` and ``current_files`` for readers

Submodules are imported on demand (DuckDB loads only when a run executes).
"""
