"""Pipeline stages: ingest (object → chunk messages) and transform (chunk → silver Parquet)."""
