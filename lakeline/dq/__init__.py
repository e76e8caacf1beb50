"""Data quality: rulesets (:mod:`~lakeline.dq.rules`) compiled to one DuckDB pass
(:mod:`~lakeline.dq.engine`), HTML reports (:mod:`~lakeline.dq.report`) and the file gate that
moves a landed file to raw or error (:mod:`~lakeline.dq.gate`)."""
