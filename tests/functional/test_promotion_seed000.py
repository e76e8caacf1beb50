"""Seed 000 verbatim: promoting runs lakeline did not write (Glue / Spark: empty ``_SUCCESS``),
the trace ids of the input reaching ``_LATEST.json``, and the CLI's coded errors.

The CLI runs in this process through ``lakeline.cli.main.main`` (exit code, stdout, stderr),
the workflow on the local engine, the seed's own example input on the moto server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeline.cli.main import main
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.pipelines.tasks import definition, lake_tasks
from lakeline.pipelines.transactions.job import execute_run
from lakeline.promotion.gate import read_run_summary
from lakeline.promotion.parquet_rows import ParquetFooterError
from lakeline.promotion.promote import current_files, promote, read_latest
from lakeline.promotion.runs import list_runs
from lakeline.promotion.selection import PromotionError
from lakeline.workflow.engine import run_definition
from tests.aws_server import boto_client, moto_endpoint  # noqa: F401
from tests.e2e.helpers import LAKELINE
from tests.functional.helpers import settings
from tests.integration.aws_lake import as_env, aws_settings, provision

# seed 000, "Input (from Step Functions)" — verbatim
SEED_INPUT: dict[str, Any] = json.loads("""{
"silver_bucket": "ohpen-silver",
"silver_prefix": "silver/mortgages/transactions",
"schema_version": "v1",
"run_key": "execution-name-from-step-functions",
"glue_job_run_id": "jr_...",
"execution_arn": "arn:aws:states:...",
"execution_start_time": "2026-01-29T12:00:00.000Z"
}""")
# seed 000, "Test in AWS": the aws lambda invoke payload — verbatim
SEED_INVOKE: dict[str, Any] = json.loads(
    '{"silver_bucket":"ohpen-silver","silver_prefix":"silver/mortgages/transactions","schema_version":"v1"}')

GLUE = "silver/mortgages/transactions"
G_JAN = f"{GLUE}/year=2024/month=01/schema_v=v1"
G_FEB = f"{GLUE}/year=2024/month=02/schema_v=v1"
LOCAL = dict(SEED_INVOKE, silver_bucket="silver")  # the local lake's silver bucket is "silver"
OWN = "mortgages/transactions"  # the transactions pipeline's own table
HEADER = "TransactionID,CustomerID,TransactionAmount,Currency,TransactionTimestamp\n"


@pytest.fixture
def lake(home: Path) -> Lake:
    return Lake.open(settings(home))


def parquet(n: int, first: int = 0) -> bytes:
    """A Parquet file of ``n`` transactions, as a Spark job would write it."""
    t = pa.table({"TransactionID": [f"TXN-{first + i}" for i in range(n)],
                  "TransactionAmount": pa.array([float(i) for i in range(n)], pa.float64())})
    buf = io.BytesIO()
    pq.write_table(t, buf, compression="snappy")
    return buf.getvalue()


def glue_run(put: Any, run_id: str, files: dict[str, list[int]], marker: bytes = b"") -> None:
    """A run folder per month, laid out as seed 000 says, committed with ``marker`` last.

    ``put(key, data)`` writes into the silver zone; ``files`` maps a month to the row count of
    each of its part files."""
    first = 0
    for month, counts in files.items():
        folder = f"{GLUE}/year=2024/month={month}/schema_v=v1/run_id={run_id}"
        for i, n in enumerate(counts):
            put(f"{folder}/part-{i:05d}-7d3f0c1e-c000.snappy.parquet", parquet(n, first))
            first += n
    for month in files:
        put(f"{GLUE}/year=2024/month={month}/schema_v=v1/run_id={run_id}/_SUCCESS", marker)
    time.sleep(0.02)  # the next run's markers are strictly newer (newest marker wins)


def local_put(lake: Lake) -> Any:
    return lambda key, data: lake.store.put("silver", key, data)


def silver_keys(lake: Lake, prefix: str) -> list[str]:
    return sorted(i.key for i in lake.store.list("silver", prefix))


def invoke(capsys: pytest.CaptureFixture[str], home: Path, *args: str) -> tuple[int, str, str]:
    """``lakeline ARGS --home HOME`` in this process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as done:
        main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


# ---- empty markers: complete runs measured from their files ---------------------------------


def test_an_empty_marker_run_is_complete_and_the_gate_counts_its_files(lake):
    glue_run(local_put(lake), "jr_a", {"01": [2, 1], "02": [4]})
    [run] = list_runs(lake, GLUE)
    assert (run.run_id, run.status, run.metrics_source, len(run.folders)) == ("jr_a", "COMPLETE", "files", 2)
    assert run.to_dict()["input_rows"] is None  # unknown until measured: never a made-up zero
    assert read_run_summary(lake, GLUE) == {
        "run_id": "jr_a", "quarantined_rows": None, "quarantine_rate": None, "condemned_rows": None,
        "input_rows": 7, "has_critical_errors": None, "promotion_allowed": True, "quarantine_by_reason": {},
        "metrics_source": "files"}


def test_an_empty_marker_run_promotes_with_row_counts_from_its_files(lake):
    glue_run(local_put(lake), "jr_a", {"01": [2, 1], "02": [4]})
    out = promote(lake, LOCAL)
    assert {k: out[k] for k in ("status", "run_id", "output_prefix", "current_prefix", "files_copied",
                                "latest_json", "noop")} == {
        "status": "success", "run_id": "jr_a", "output_prefix": f"{G_FEB}/run_id=jr_a",
        "current_prefix": f"{G_FEB}/current", "files_copied": 1, "latest_json": f"{G_FEB}/_LATEST.json",
        "noop": False}
    assert [(p["partition"], p["files_copied"], p["partition_rows"]) for p in out["partitions"]] == [
        (G_JAN, 2, 3), (G_FEB, 1, 4)]
    latest = read_latest(lake, G_JAN)
    assert {k: latest[k] for k in ("run_id", "input_rows", "valid_rows", "quarantined_rows", "condemned_rows",
                                   "metrics_source", "glue_job_run_id", "files_copied")} == {
        "run_id": "jr_a", "input_rows": 7, "valid_rows": 7, "quarantined_rows": None, "condemned_rows": None,
        "metrics_source": "files", "glue_job_run_id": None, "files_copied": 2}
    jan = current_files(lake, f"{GLUE}/year=2024/month=01")
    assert jan == [f"{G_JAN}/current/part-00000-7d3f0c1e-c000.snappy-jr_a.parquet",
                   f"{G_JAN}/current/part-00001-7d3f0c1e-c000.snappy-jr_a.parquet"]
    ids = [i for k in jan for i in pq.read_table(io.BytesIO(lake.store.get("silver", k)))["TransactionID"].to_pylist()]
    assert ids == ["TXN-0", "TXN-1", "TXN-2"]
    assert promote(lake, LOCAL)["noop"] is True


@pytest.mark.parametrize("marker", [b"\n", b'{"writer": "glue", "job": "etl"}'])
def test_a_blank_marker_or_one_without_metrics_is_counted_from_the_files(lake, marker):
    glue_run(local_put(lake), "jr_nl", {"03": [5]}, marker=marker)
    gate = read_run_summary(lake, GLUE)
    assert (gate["input_rows"], gate["quarantined_rows"], gate["metrics_source"], gate["promotion_allowed"]) == (
        5, None, "files", True)


def test_an_empty_marker_run_without_rows_is_refused_by_the_gate(lake, home, capsys):
    glue_run(local_put(lake), "jr_empty", {"01": [0]})
    gate = read_run_summary(lake, GLUE)
    assert (gate["input_rows"], gate["promotion_allowed"], gate["metrics_source"]) == (0, False, "files")
    code, out, _ = invoke(capsys, home, "promote", "--prefix", GLUE, "--json")
    doc = json.loads(out)
    assert (code, doc["status"], doc["code"]) == (1, "error", "GATE_REFUSED")
    assert doc["reason"].startswith("run jr_empty fails the promotion gate: its Parquet files hold no row")
    assert silver_keys(lake, f"{G_JAN}/current/") == [] and read_latest(lake, G_JAN) is None
    code, out, _ = invoke(capsys, home, "promote", "--prefix", GLUE, "--force", "--json")
    assert (code, json.loads(out)["run_id"]) == (0, "jr_empty")


@pytest.mark.parametrize(("marker", "detail"), [
    (b"done", "unexpected character"),
    (b'["input_rows", 3]', "it holds a JSON list, not an object"),
    (b'{"input_rows": 3', "unexpected end of data"),
])
def test_a_marker_neither_empty_nor_json_is_an_error_naming_its_key(lake, marker, detail):
    glue_run(local_put(lake), "jr_a", {"01": [2]})
    glue_run(local_put(lake), "jr_bad", {"01": [3]}, marker=marker)
    key = f"{G_JAN}/run_id=jr_bad/_SUCCESS"
    [a, bad] = list_runs(lake, GLUE)
    assert (a.status, bad.status) == ("COMPLETE", "INVALID")
    # the newest run is unreadable: not silently skipped for the older one
    with pytest.raises(PromotionError) as refused:
        read_run_summary(lake, GLUE)
    assert refused.value.code == "INVALID_MARKER"
    assert f"_SUCCESS object {key} (zone silver) is neither empty nor a JSON object" in str(refused.value)
    assert detail.lower() in str(refused.value).lower()
    out = promote(lake, LOCAL)
    assert (out["status"], out["code"]) == ("error", "INVALID_MARKER") and key in out["reason"]
    failed = promote(lake, dict(LOCAL, run_key="jr_bad"))
    assert (failed["code"], key in failed["reason"]) == ("INVALID_MARKER", True)
    assert silver_keys(lake, f"{G_JAN}/current/") == [] and read_latest(lake, G_JAN) is None
    # the good run can still be promoted by name
    assert promote(lake, dict(LOCAL, run_key="jr_a"))["status"] == "success"
    assert read_latest(lake, G_JAN)["run_id"] == "jr_a"


def test_a_file_that_is_not_parquet_is_an_error_naming_its_key(lake):
    glue_run(local_put(lake), "jr_a", {"01": [2]})
    key = f"{G_JAN}/run_id=jr_a/part-00001-7d3f0c1e-c000.snappy.parquet"
    lake.store.put("silver", key, b"this is a CSV file, not Parquet\n")
    with pytest.raises(ParquetFooterError) as refused:
        read_run_summary(lake, GLUE)
    assert (refused.value.code, str(refused.value)) == (
        "INVALID_PARQUET", f"silver object {key} is not a readable Parquet file: it does not end with the PAR1 magic")
    out = promote(lake, LOCAL)
    assert (out["status"], out["code"], out["reason"]) == ("error", "INVALID_PARQUET", str(refused.value))
    assert silver_keys(lake, f"{G_JAN}/current/") == []
    lake.store.put("silver", key, b"PAR1")
    assert "4 bytes is too short" in promote(lake, LOCAL)["reason"]


def test_an_older_invalid_marker_does_not_block_the_newest_run(lake):
    glue_run(local_put(lake), "jr_bad", {"01": [3]}, marker=b"garbage")
    glue_run(local_put(lake), "jr_b", {"01": [2]})
    assert promote(lake, LOCAL)["run_id"] == "jr_b"


# ---- the promote task, the API and the CLI on a prefix no pipeline owns ----------------------


def test_the_promote_task_promotes_a_glue_run_with_the_seed_shaped_input(lake):
    glue_run(local_put(lake), "execution-name-from-step-functions", {"01": [3]})
    tasks = lake_tasks(lake, registry(lake.settings))
    fn, payload, _ = tasks.resolve("arn:aws:states:::lambda:invoke", {
        "FunctionName": "lakeline-promote", "Payload": dict(SEED_INPUT, silver_bucket="silver")})
    out = fn(payload)
    assert (out["status"], out["run_id"], out["files_copied"]) == (
        "success", "execution-name-from-step-functions", 1)
    latest = read_latest(lake, G_JAN)
    assert {k: latest[k] for k in ("glue_job_run_id", "execution_arn", "execution_start_time", "input_rows")} == {
        "glue_job_run_id": "jr_...", "execution_arn": "arn:aws:states:...",
        "execution_start_time": "2026-01-29T12:00:00.000Z", "input_rows": 3}
    # nothing was re-run: the silver zone holds the Glue run, its promoted copy and the pointer
    assert silver_keys(lake, "") == sorted([
        f"{G_JAN}/run_id=execution-name-from-step-functions/_SUCCESS",
        f"{G_JAN}/run_id=execution-name-from-step-functions/part-00000-7d3f0c1e-c000.snappy.parquet",
        f"{G_JAN}/current/part-00000-7d3f0c1e-c000.snappy-execution-name-from-step-functions.parquet",
        f"{G_JAN}/_LATEST.json"])


def test_cli_promote_prefix_with_trace_ids(lake, home, capsys):
    glue_run(local_put(lake), "jr_a", {"01": [2]})
    code, out, _ = invoke(capsys, home, "run-summary", "--prefix", GLUE, "--json")
    assert (code, json.loads(out)["input_rows"], json.loads(out)["metrics_source"]) == (0, 2, "files")
    code, out, _ = invoke(capsys, home, "promote", "--prefix", f"/{GLUE}/", "--glue-job-run-id", "jr_0042",
                          "--execution-arn", "arn:aws:states:us-east-1:1:execution:m:e1",
                          "--execution-start-time", "2026-01-29T12:00:00.000Z", "--json")
    doc = json.loads(out)
    assert (code, doc["status"], doc["run_id"], doc["latest_json"], doc["glue_job_run_id"]) == (
        0, "success", "jr_a", f"{G_JAN}/_LATEST.json", "jr_0042")
    latest = read_latest(lake, G_JAN)
    assert (latest["glue_job_run_id"], latest["execution_arn"], latest["execution_start_time"]) == (
        "jr_0042", "arn:aws:states:us-east-1:1:execution:m:e1", "2026-01-29T12:00:00.000Z")
    code, out, err = invoke(capsys, home, "promote", "--prefix", GLUE)
    assert (code, err) == (0, "") and out.startswith("promoted run jr_a: 1 partition(s), 0 file(s)")
    # --schema-version reads other schema_v= folders: there is no v2 run
    code, out, _ = invoke(capsys, home, "promote", "--prefix", GLUE, "--schema-version", "v2", "--json")
    assert (code, json.loads(out)) == (1, {"status": "error", "code": "NO_COMPLETED_RUN", "reason": (
        f"no completed run (run_id=*/_SUCCESS) under {GLUE} (schema_v=v2)")})


@pytest.mark.parametrize(("args", "message"), [
    (["--table", "silver.transactions", "--prefix", GLUE], "give --table or --prefix, not both"),
    (["--prefix", "s3://ohpen-silver/silver/x"], "is a key prefix in the silver zone, not a URI"),
    (["--prefix", f"{G_JAN}/run_id=jr_a"], "goes below the table: give the prefix above year=YYYY"),
    (["--prefix", "a/../b"], "has an empty, '.' or '..' path segment"),
    (["--prefix", "/"], "--prefix must name a key prefix in the silver zone"),
    (["--schema-version", "v1/x"], "--schema-version 'v1/x' is not a schema version"),
    (["--execution-start-time", "yesterday"], "--execution-start-time 'yesterday' is not an ISO-8601 time"),
])
def test_cli_promote_usage_errors(home, capsys, args, message):
    code, out, err = invoke(capsys, home, "promote", *args)
    assert (code, out) == (2, "") and message in err and err.startswith("error: ")
    code, out, _ = invoke(capsys, home, "promote", *args, "--json")
    doc = json.loads(out)
    assert (code, doc["status"], doc["code"], message in doc["reason"]) == (2, "error", "USAGE_ERROR", True)


# ---- coded errors of run-summary / promote (specs §1 shape on stdout under --json) -----------


@pytest.mark.parametrize("command", ["promote", "run-summary"])
def test_cli_errors_are_coded_json_or_one_stderr_line(home, capsys, command):
    no_run = f"no completed run (run_id=*/_SUCCESS) under {OWN} (schema_v=v1)"
    code, out, _ = invoke(capsys, home, command, "--json")
    assert (code, json.loads(out)) == (1, {"status": "error", "code": "NO_COMPLETED_RUN", "reason": no_run})
    code, out, err = invoke(capsys, home, command)
    assert (code, out, err) == (1, "", f"error: {no_run}\n")
    unknown = f"no run 20990101T000000Z under {OWN} (schema_v=v1)"
    code, out, _ = invoke(capsys, home, command, "--run-key", "20990101T000000Z", "--json")
    assert (code, json.loads(out)) == (1, {"status": "error", "code": "RUN_NOT_FOUND", "reason": unknown})
    code, out, err = invoke(capsys, home, command, "--run-key", "20990101T000000Z")
    assert (code, out, err) == (1, "", f"error: {unknown}\n")


def test_cli_promote_of_a_run_without_rows_says_no_parquet_files(lake, home, capsys):
    lake.store.put("landing", "transactions/bad.csv", (HEADER + "X,C1,1.00,XXX,2024-01-01\n").encode())
    nothing = execute_run(lake, ["transactions/bad.csv"])
    code, out, _ = invoke(capsys, home, "promote", "--run-key", nothing.run_id, "--json")
    assert (code, json.loads(out)) == (1, {"status": "error", "code": "NO_PARQUET_FILES", "reason": (
        f"run {nothing.run_id} has no Parquet files (it loaded no row)")})
    code, out, _ = invoke(capsys, home, "promote", "--json")  # the newest run with files: none
    assert (code, json.loads(out)["code"]) == (1, "NO_COMPLETED_RUN")


def test_cli_promote_gates_the_run_it_promotes(lake, home, capsys):
    lines = "".join(f"G{i},C1,1.00,EUR,2024-01-10T10:00:00Z\n" for i in range(3))
    lake.store.put("landing", "transactions/good.csv", (HEADER + lines).encode())
    good = execute_run(lake, ["transactions/good.csv"])
    time.sleep(0.02)
    lake.store.put("landing", "transactions/bad.csv", (HEADER + "X,C1,1.00,XXX,2024-01-01\n").encode())
    execute_run(lake, ["transactions/bad.csv"])  # newer, all rows quarantined, no folder
    # promotion picks the newest run with files; the gate judges that run, not the empty one
    code, out, _ = invoke(capsys, home, "promote", "--json")
    assert (code, json.loads(out)["run_id"]) == (0, good.run_id)


def test_cli_gate_refusal_on_a_dirty_run(lake, home, capsys):
    lines = "".join(f"D{i},C1,1.00,{'XXX' if i < 2 else 'EUR'},2024-01-10T10:00:00Z\n" for i in range(10))
    lake.store.put("landing", "transactions/d.csv", (HEADER + lines).encode())
    run = execute_run(lake, ["transactions/d.csv"])
    code, out, err = invoke(capsys, home, "promote")
    assert (code, out) == (1, "")
    assert err == (f"error: run {run.run_id} fails the promotion gate: quarantine rate 20.00%, 0 condemned, "
                   "critical errors: False (use --force to override)\n")
    code, out, _ = invoke(capsys, home, "promote", "--json")
    doc = json.loads(out)
    assert (code, doc["status"], doc["code"], doc["summary"]["quarantined_rows"]) == (1, "error", "GATE_REFUSED", 2)


# ---- the etl_promote workflow passes the input's trace ids through ---------------------------


def _land(lake: Lake, name: str, ids: list[str]) -> None:
    lines = "".join(f"{i},C1,1.00,EUR,2024-01-10T10:00:00Z\n" for i in ids)
    lake.store.put("landing", f"transactions/{name}.csv", (HEADER + lines).encode())


def _run_workflow(lake: Lake, payload: dict[str, Any], name: str) -> Any:
    reg = registry(lake.settings)
    return run_definition(definition(reg, "etl_promote"), payload, tasks=lake_tasks(lake, reg), name=name,
                          store=lake.state)


def test_etl_promote_passes_the_inputs_trace_ids_to_latest_json(lake):
    _land(lake, "a", ["A1", "A2"])
    ex = _run_workflow(lake, {"silver_bucket": "silver", "silver_prefix": OWN, "glue_job_run_id": "jr_7f3a",
                              "execution_arn": "arn:aws:states:us-east-1:1:execution:etl:outer",
                              "execution_start_time": "2026-01-29T12:00:00.000Z"}, "with-ids")
    assert ex.status == "SUCCEEDED", (ex.error, ex.cause)
    jan = f"{OWN}/year=2024/month=01/schema_v=v1"
    latest = read_latest(lake, jan)
    assert {k: latest[k] for k in ("run_id", "glue_job_run_id", "execution_arn", "execution_start_time",
                                   "input_rows", "metrics_source")} == {
        "run_id": ex.output["etl"]["value"]["run_id"], "glue_job_run_id": "jr_7f3a",
        "execution_arn": "arn:aws:states:us-east-1:1:execution:etl:outer",
        "execution_start_time": "2026-01-29T12:00:00.000Z", "input_rows": 2, "metrics_source": "marker"}
    # without them: no glue job, and the trace is this execution
    _land(lake, "b", ["B1"])
    ex2 = _run_workflow(lake, {"silver_prefix": OWN}, "without-ids")
    assert ex2.status == "SUCCEEDED", (ex2.error, ex2.cause)
    latest = read_latest(lake, jan)
    assert (latest["run_id"], latest["glue_job_run_id"], latest["execution_arn"]) == (
        ex2.output["etl"]["value"]["run_id"], None, ex2.execution_arn)
    assert latest["execution_start_time"].startswith(ex2.start_date.strftime("%Y-%m-%dT%H:%M"))


def test_etl_promote_with_a_bad_trace_id_fails_and_promotes_nothing(lake):
    _land(lake, "a", ["A1"])
    ex = _run_workflow(lake, {"silver_prefix": OWN, "glue_job_run_id": 42}, "bad-id")
    assert (ex.status, ex.error) == ("FAILED", "PipelineFailed")
    [promoted] = [json.loads(e["stateExitedEventDetails"]["output"]) for e in ex.history
                  if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "PromoteSilver"]
    assert promoted["promotion"]["value"] == {
        "status": "error", "code": "INVALID_EVENT", "reason": "glue_job_run_id must be a string"}
    assert read_latest(lake, f"{OWN}/year=2024/month=01/schema_v=v1") is None


# ---- the seed's own example input, verbatim, on S3 (moto) -------------------------------------


def test_the_seed_example_input_promotes_a_glue_run_verbatim_on_s3(moto_endpoint, tmp_path):  # noqa: F811
    overrides = provision(moto_endpoint)
    s3 = boto_client("s3", moto_endpoint)
    s3.create_bucket(Bucket="ohpen-silver")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="ohpen-silver"):  # a rerun in this session
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket="ohpen-silver", Key=obj["Key"])
    overrides["aws.zone_silver"] = "s3://ohpen-silver/"
    lake = Lake.open(aws_settings(tmp_path / "ws", overrides))

    def glue_put(key: str, data: bytes) -> None:  # what the Glue job does: plain PUTs
        s3.put_object(Bucket="ohpen-silver", Key=key, Body=data)

    glue_run(glue_put, "execution-name-from-step-functions", {"01": [3, 2]})
    out = promote(lake, SEED_INPUT)
    folder = f"{G_JAN}/run_id=execution-name-from-step-functions"
    assert {k: out[k] for k in ("status", "run_id", "output_prefix", "current_prefix", "files_copied",
                                "latest_json", "glue_job_run_id", "execution_arn")} == {
        "status": "success", "run_id": "execution-name-from-step-functions", "output_prefix": folder,
        "current_prefix": f"{G_JAN}/current", "files_copied": 2, "latest_json": f"{G_JAN}/_LATEST.json",
        "glue_job_run_id": "jr_...", "execution_arn": "arn:aws:states:..."}
    latest = orjson.loads(s3.get_object(Bucket="ohpen-silver", Key=f"{G_JAN}/_LATEST.json")["Body"].read())
    assert {k: latest[k] for k in ("run_id", "glue_job_run_id", "execution_arn", "execution_start_time",
                                   "input_rows", "valid_rows", "quarantined_rows", "metrics_source")} == {
        "run_id": "execution-name-from-step-functions", "glue_job_run_id": "jr_...",
        "execution_arn": "arn:aws:states:...", "execution_start_time": "2026-01-29T12:00:00.000Z",
        "input_rows": 5, "valid_rows": 5, "quarantined_rows": None, "metrics_source": "files"}
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="ohpen-silver", Prefix=f"{G_JAN}/current/")["Contents"])
    assert listed == [f"{G_JAN}/current/part-0000{i}-7d3f0c1e-c000.snappy-execution-name-from-step-functions.parquet"
                      for i in (0, 1)]

    # a newer Glue run, then the seed's `aws lambda invoke` payload verbatim: the newest marker wins
    time.sleep(1.1)  # S3 LastModified has whole seconds
    glue_run(glue_put, "a-later-run", {"01": [4]})
    later = promote(lake, SEED_INVOKE)
    assert (later["status"], later["run_id"], later["files_copied"]) == ("success", "a-later-run", 1)

    # the CLI on the aws profile, with --prefix (the transactions pipeline never wrote here)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKELINE")}
    env.update(as_env(overrides))
    env["LAKELINE_HOME"] = str(tmp_path / "ws")
    done = subprocess.run([str(LAKELINE), "promote", "--prefix", GLUE, "--run-key",
                           "execution-name-from-step-functions", "--glue-job-run-id", "jr_cli", "--json"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (json.loads(done.stdout)["run_id"], json.loads(done.stdout)["noop"]) == (
        "execution-name-from-step-functions", False)
    latest = orjson.loads(s3.get_object(Bucket="ohpen-silver", Key=f"{G_JAN}/_LATEST.json")["Body"].read())
    assert (latest["run_id"], latest["glue_job_run_id"]) == ("execution-name-from-step-functions", "jr_cli")
    # the seed's input against another bucket is refused, naming both
    wrong = promote(lake, dict(SEED_INPUT, silver_bucket="other-silver"))
    assert (wrong["code"], wrong["reason"]) == (
        "BUCKET_MISMATCH", "silver_bucket other-silver is not this lake's silver bucket ohpen-silver")
