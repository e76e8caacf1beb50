"""Backends implementing the ports (``local`` is the embedded default)."""
