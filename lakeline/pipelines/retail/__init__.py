"""The retail lakehouse (seed 004): landed orders, customers and products CSV files, a run log
of every landing, and a batch job that types, checks and enriches each orders file into the
Iceberg table ``retail_silver.orders_silver`` (one append per orders file, exactly once).

- :mod:`lakeline.pipelines.retail.runlog` — landing keys and the run-log item written on each landing;
- :mod:`lakeline.pipelines.retail.transform` — the DuckDB transform of one orders file, with the
  fail-fast checks (or quarantine);
- :mod:`lakeline.pipelines.retail.job` — :func:`~lakeline.pipelines.retail.job.land_retail`,
  :func:`~lakeline.pipelines.retail.job.request_run` and :func:`~lakeline.pipelines.retail.job.run_retail`.
"""
