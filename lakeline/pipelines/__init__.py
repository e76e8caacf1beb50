"""Pipelines: the ``Pipeline`` protocol, the reference pipelines and the registry.

Each pipeline lives in its own folder (``shipments/``, ``transactions/``, ``retail/``,
``carbon/``, ``totesys/``); a user's pipelines are files in ``HOME/pipelines/`` or Python
objects registered with :func:`register_pipeline`. Generic code reaches them only through
:class:`~lakeline.pipelines.base.Pipeline` and :mod:`lakeline.pipelines.registry`.
"""

from __future__ import annotations

from lakeline.pipelines.base import (
    Generator,
    GenOptions,
    JobFunction,
    Pipeline,
    Report,
    Schedule,
    TaskSpec,
    Trigger,
)
from lakeline.pipelines.registry import Registry, register_pipeline, registry, unregister_pipeline

__all__ = ["GenOptions", "Generator", "JobFunction", "Pipeline", "Registry", "Report", "Schedule", "TaskSpec",
           "Trigger", "register_pipeline", "registry", "unregister_pipeline"]
