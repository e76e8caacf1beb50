"""Iceberg catalog of a lake on AWS: the Glue Data Catalog, warehouse in the silver zone.

Glue and S3 are reached in ``aws.region`` through ``aws.endpoint_url`` when one is set (moto,
LocalStack); credentials come from the usual boto/Arrow chain. The catalog is named after the
lake and the warehouse is ``s3://<silver bucket>/<silver prefix>iceberg``. The Glue Data
Catalog always exists (one per account and region), so nothing is created by opening it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeline.adapters.aws.session import parse_s3_uri
from lakeline.config import AwsSettings, Settings
from lakeline.errors import ConfigError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog


@dataclass(frozen=True)
class GlueCatalogOpener:
    """Opens the Glue catalog ``name`` with its warehouse in ``silver`` (bucket, key prefix)."""

    name: str
    aws: AwsSettings
    silver: tuple[str, str]

    @classmethod
    def for_settings(cls, settings: Settings) -> GlueCatalogOpener:
        """The catalog of the lake ``settings.lake.name`` (silver zone from ``aws.zone_silver``)."""
        silver = parse_s3_uri(settings.aws.zone_uri("silver", settings.lake.name))
        return cls(settings.lake.name, settings.aws, silver)

    def warehouse(self) -> str:
        """The warehouse URI (``s3://<silver bucket>/<silver prefix>iceberg``)."""
        bucket, prefix = self.silver
        return f"s3://{bucket}/{prefix}iceberg"

    def properties(self) -> dict[str, str]:
        """The pyiceberg catalog properties (without the catalog type)."""
        region = self.aws.region
        props = {"warehouse": self.warehouse(), "glue.region": region, "s3.region": region}
        if self.aws.endpoint_url:
            props.update({"glue.endpoint": self.aws.endpoint_url, "s3.endpoint": self.aws.endpoint_url})
        return props

    def exists(self) -> bool:
        """Always True: the account's Glue Data Catalog is there (listing it creates nothing)."""
        return True

    def open(self) -> Catalog:
        """The catalog (:class:`ConfigError` naming the ``aws`` extra when boto3 is missing)."""
        try:
            import boto3  # noqa: F401  # heavy: boto3, which pyiceberg's Glue catalog needs
            from pyiceberg.catalog.glue import GlueCatalog  # heavy: pyiceberg (~1.5 s)
        except ImportError as exc:
            raise ConfigError(
                f"Iceberg on the aws profile needs the 'aws' extra: pip install 'lakeline[aws]' ({exc})"
            ) from None
        return GlueCatalog(self.name, **self.properties())


__all__ = ["GlueCatalogOpener"]
