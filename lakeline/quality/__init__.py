"""Data quality: expectations evaluated in DuckDB (the specs §3 set for the shipments types)."""
