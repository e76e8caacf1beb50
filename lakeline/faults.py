"""Deterministic crash points for the recovery tests (``LAKELINE_CRASH_AT=name[:n]``).

``crash_point("transform.after_silver")`` kills the process with ``os._exit(137)`` (no
cleanup, like SIGKILL) when the variable names that point; ``name:n`` crashes on its n-th hit.
Unset in production, it costs one dictionary lookup.
"""

from __future__ import annotations

import os

from lakeline import envvars

_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here if ``LAKELINE_CRASH_AT`` names this point."""
    spec = os.environ.get(envvars.CRASH_AT)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os._exit(137)
