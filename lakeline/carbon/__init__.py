"""The ``carbon`` reference pipeline (CarbonLake, seed 003; contract in carbon.md).

:mod:`~lakeline.carbon.factors` loads emission factor tables, :mod:`~lakeline.carbon.units`
reconciles units, :mod:`~lakeline.carbon.calculator` computes CO2e in DuckDB, and
:mod:`~lakeline.carbon.job` holds the workflow's steps and the driver `lakeline run` uses.
"""
