"""The version of lakeline (one place, read by the package, the CLI and OpenLineage events)."""

__version__ = "0.1.0"
