"""Fake-data generators for lakeline's example pipelines (deterministic given a seed)."""
