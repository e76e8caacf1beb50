"""Parameter store port (SSM Parameter Store semantics: hierarchical names)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class ParameterStore(ABC):
    """Named string parameters such as watermarks and sequence ids."""

    @abstractmethod
    def get(self, name: str) -> str | None:
        """The value, or None if the parameter does not exist."""

    @abstractmethod
    def put(self, name: str, value: str, *, overwrite: bool = True) -> int:
        """Store a value; returns the new version. Without ``overwrite`` an existing name
        raises :class:`ConditionFailed`."""

    @abstractmethod
    def get_by_path(self, path: str, *, recursive: bool = True) -> dict[str, str]:
        """All parameters under ``path`` (``/a/b`` → ``/a/b/x``), by name."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Delete a parameter (absent is fine)."""
