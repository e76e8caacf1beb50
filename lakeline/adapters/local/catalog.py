"""Iceberg catalog of the local lake: pyiceberg's SQL catalog on SQLite.

The catalog database is ``<home>/state/catalog.db`` and the warehouse (table data and
metadata files) ``file://<home>/zones/silver/iceberg``. Nothing is created until the catalog
is opened: :meth:`SqliteCatalogOpener.exists` only looks for the database file, so listing the
tables of a lake that never wrote one creates no catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lakeline.config import Settings
from lakeline.errors import ConfigError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog

#: The catalog name pyiceberg records in the SQL catalog's rows (tables made so far use it).
CATALOG_NAME = "lakeline"


@dataclass(frozen=True)
class SqliteCatalogOpener:
    """Opens the SQL catalog of a local lake (``db_path``) with its warehouse directory."""

    db_path: Path
    warehouse_dir: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> SqliteCatalogOpener:
        """The catalog of the lake at ``settings.home``."""
        return cls(settings.state_dir / "catalog.db", settings.zones_dir / "silver" / "iceberg")

    def warehouse(self) -> str:
        """The warehouse URI (``file://<home>/zones/silver/iceberg``)."""
        return f"file://{self.warehouse_dir}"

    def properties(self) -> dict[str, str]:
        """The pyiceberg catalog properties (without the catalog type)."""
        return {"warehouse": self.warehouse(), "uri": f"sqlite:///{self.db_path}"}

    def exists(self) -> bool:
        """True once the catalog database exists (checking creates nothing)."""
        return self.db_path.exists()

    def open(self) -> Catalog:
        """The catalog; creates the database, its tables and the warehouse directory if missing."""
        try:
            from pyiceberg.catalog.sql import SqlCatalog  # heavy: pyiceberg + SQLAlchemy (~1.5 s)
        except ImportError as exc:
            raise ConfigError(
                f"Iceberg tables need pyiceberg with the 'sql-sqlite' and 'pyarrow' extras ({exc})"
            ) from None
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.warehouse_dir.mkdir(parents=True, exist_ok=True)
        return SqlCatalog(CATALOG_NAME, **self.properties())


__all__ = ["CATALOG_NAME", "SqliteCatalogOpener"]
