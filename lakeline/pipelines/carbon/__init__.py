"""The ``carbon`` reference pipeline (CarbonLake, seed 003; contract in carbon.md).

:mod:`~lakeline.pipelines.carbon.factors` loads emission factor tables,
:mod:`~lakeline.pipelines.carbon.units`
reconciles units, :mod:`~lakeline.pipelines.carbon.calculator` computes CO2e in DuckDB, and
:mod:`~lakeline.pipelines.carbon.job` holds the workflow's steps and the driver `lakeline run` uses.
"""
