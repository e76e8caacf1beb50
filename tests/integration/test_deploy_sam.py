"""`lakeline deploy sam`: the template passes cfn-lint and checkov and has the promised shape."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from lakeline.cli.deploy import deploy
from lakeline.config import ZONES, AwsSettings, QueueSettings, load_settings
from lakeline.deploy.sam import TemplateOptions, build_template, builtin_registry, write_sam
from lakeline.errors import UsageError
from lakeline.lake import Lake
from lakeline.pipelines.registry import registry
from lakeline.pipelines.shipments import SHIPMENTS
from lakeline.pipelines.tasks import lake_tasks, workflows
from lakeline.workflow.shipped import export

yaml = pytest.importorskip("yaml")

#: IAM statements allowed a "*" action or resource. Deliberately empty: X-Ray tracing, the one
#: feature that would need Resource "*", is off (see lakeline/deploy/sam.py).
STAR_EXCEPTIONS: list[str] = []


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sam")
    write_sam(d, TemplateOptions())
    return d


@pytest.fixture(scope="module")
def tpl(out: Path) -> dict[str, Any]:
    return yaml.safe_load((out / "template.yaml").read_text("utf-8"))


def _of_type(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == kind}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ the linters


def test_yaml_is_the_built_template(tpl: dict[str, Any]) -> None:
    assert tpl == build_template(TemplateOptions())
    assert tpl["Transform"] == "AWS::Serverless-2016-10-31"


def test_cfn_lint_reports_no_errors(out: Path) -> None:
    proc = subprocess.run([_tool("cfn-lint"), "template.yaml"], cwd=out, capture_output=True, text=True)
    # cfn-lint's exit code is a bit field: 1 fatal, 2 error, 4 warning, 8 informational.
    assert proc.returncode & 3 == 0, proc.stdout + proc.stderr
    if proc.returncode & 4:
        warnings.warn(f"cfn-lint warnings:\n{proc.stdout}", stacklevel=1)


def test_sam_validate_lint_accepts_the_template(out: Path) -> None:
    """The SAM CLI's own check (the transform and cfn-lint), installed by `make test` in
    `.venv-sam` (its dependency pins are not lakeline's)."""
    sam = Path(__file__).resolve().parents[2] / ".venv-sam" / "bin" / "sam"
    if not sam.exists():
        pytest.skip("the SAM CLI is not installed: `make .venv-sam/.installed` (make test does it)")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # noqa: S105 - not a secret
    proc = subprocess.run([str(sam), "validate", "--lint"], cwd=out, capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "is a valid SAM Template" in proc.stdout + proc.stderr


def test_checkov_has_no_failed_checks_and_no_stale_suppressions(out: Path, tpl: dict[str, Any]) -> None:
    proc = subprocess.run(
        [_tool("checkov"), "-f", "template.yaml", "--framework", "cloudformation", "--output", "json",
         "--quiet", "--skip-download"],
        cwd=out, capture_output=True, text=True,
    )
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    failed = report["results"].get("failed_checks", [])
    assert summary["failed"] == 0, [(f["check_id"], f["resource"], f["check_name"]) for f in failed]
    assert summary["parsing_errors"] == 0
    suppressions = sum(len(r.get("Metadata", {}).get("checkov", {}).get("skip", []))
                       for r in tpl["Resources"].values())
    assert summary["skipped"] == suppressions, "a suppression no longer matches a finding: remove it"


def test_every_suppression_names_a_check_and_gives_a_reason(tpl: dict[str, Any]) -> None:
    seen = 0
    for name, res in tpl["Resources"].items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            seen += 1
            assert skip["id"].startswith("CKV"), name
            assert len(skip.get("comment", "").strip()) > 20, f"{name}: {skip['id']} needs a reason"
    assert seen > 0


# ------------------------------------------------------------------ IAM


def test_one_least_privilege_role_per_function(tpl: dict[str, Any]) -> None:
    functions = _of_type(tpl, "AWS::Serverless::Function")
    roles = _of_type(tpl, "AWS::IAM::Role")
    assert len(functions) == 23  # 5 stages + 15 workflow tasks + the retail, totesys and transactions jobs
    machines = _of_type(tpl, "AWS::Serverless::StateMachine")
    used = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in [*functions.values(), *machines.values()]]
    used += sorted({s["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
                    for s in _of_type(tpl, "AWS::Scheduler::Schedule").values()})
    assert sorted(used) == sorted(roles) and len(set(used)) == len(used)
    for f in functions.values():
        assert "Policies" not in f["Properties"] and "Tracing" not in f["Properties"]
    for name, role in roles.items():
        assert "ManagedPolicyArns" not in role["Properties"], name
        for policy in role["Properties"]["Policies"]:
            for st in policy["PolicyDocument"]["Statement"]:
                label = f"{name}/{st.get('Sid')}"
                assert st["Effect"] == "Allow"
                for action in _as_list(st["Action"]):
                    assert "*" not in action or label in STAR_EXCEPTIONS, label
                for resource in _as_list(st["Resource"]):
                    assert resource != "*" or label in STAR_EXCEPTIONS, label
                    if isinstance(resource, str):
                        assert resource.startswith("arn:"), label
                    elif "Fn::Sub" in resource:
                        text = resource["Fn::Sub"]
                        assert text.startswith(("arn:${AWS::Partition}:", "${StateTable.Arn}/index/")), label
                    else:
                        assert set(resource) <= {"Ref", "Fn::GetAtt"}, label
    assert STAR_EXCEPTIONS == []


def test_each_role_may_write_its_own_log_group_only(tpl: dict[str, Any]) -> None:
    for name, fn in _of_type(tpl, "AWS::Serverless::Function").items():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        role = tpl["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]
        logs = [st for p in role["Properties"]["Policies"] for st in p["PolicyDocument"]["Statement"]
                if any(a.startswith("logs:") for a in _as_list(st["Action"]))]
        assert [st["Resource"] for st in logs] == [{"Fn::GetAtt": [group, "Arn"]}], name
        retention = tpl["Resources"][group]["Properties"]["RetentionInDays"]
        assert 1 <= retention <= 365, name


# ------------------------------------------------------------------ storage


def test_buckets_encrypted_private_tls_only(tpl: dict[str, Any]) -> None:
    buckets = _of_type(tpl, "AWS::S3::Bucket")
    assert len(buckets) == len(ZONES) + 1  # the zones and the access-log bucket
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in _of_type(tpl, "AWS::S3::BucketPolicy").values()}
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        pab = props["PublicAccessBlockConfiguration"]
        assert pab == {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                       "RestrictPublicBuckets": True}, name
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}, name
        deny = [st for st in policies[name]["Properties"]["PolicyDocument"]["Statement"]
                if st["Effect"] == "Deny"]
        assert any(st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   and st["Principal"] == "*" and len(st["Resource"]) == 2 for st in deny), name
        if name != "AccessLogsBucket":
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}


def test_versioning_and_lifecycle(tpl: dict[str, Any]) -> None:
    buckets = tpl["Resources"]
    for zone in ZONES:
        props = buckets[zone.capitalize() + "Bucket"]["Properties"]
        rules = props["LifecycleConfiguration"]["Rules"]
        versioned = props.get("VersioningConfiguration", {}).get("Status") == "Enabled"
        assert versioned == (zone in ("landing", "raw")), zone
        if versioned:
            assert any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") for r in rules), zone
        if zone == "tmp":
            assert any(0 < r.get("ExpirationInDays", 0) <= 30 for r in rules)


def test_state_table(tpl: dict[str, Any]) -> None:
    props = tpl["Resources"]["StateTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {"pk": "S", "sk": "S"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True


# ------------------------------------------------------------------ queues and triggers


def _consumer_timeout(tpl: dict[str, Any], queue: str) -> int:
    for esm in _of_type(tpl, "AWS::Lambda::EventSourceMapping").values():
        if esm["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}:
            fn = esm["Properties"]["FunctionName"]["Ref"]
            return int(tpl["Resources"][fn]["Properties"]["Timeout"])
    raise AssertionError(f"no event source mapping consumes {queue}")


def test_queues_follow_the_spec(tpl: dict[str, Any]) -> None:
    spec = QueueSettings()
    res = tpl["Resources"]
    for q in ("Ingest", "Transform"):
        main = res[f"{q}Queue"]["Properties"]
        dlq = res[f"{q}DeadLetterQueue"]["Properties"]
        assert main["VisibilityTimeout"] == spec.visibility_timeout
        assert main["VisibilityTimeout"] >= 6 * _consumer_timeout(tpl, f"{q}Queue")
        assert main["MessageRetentionPeriod"] == spec.retention_seconds
        assert dlq["MessageRetentionPeriod"] > main["MessageRetentionPeriod"]
        assert main["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [f"{q}DeadLetterQueue", "Arn"]},
                                         "maxReceiveCount": spec.max_receive_count}
        assert main["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
        assert dlq["QueueName"] == main["QueueName"] + "-dlq"


def test_transform_mapping_reports_partial_batch_failures(tpl: dict[str, Any]) -> None:
    esm = tpl["Resources"]["TransformQueueEventSourceMapping"]["Properties"]
    assert esm["BatchSize"] == 10
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["FunctionName"] == {"Ref": "TransformFunction"}


def test_functions_handlers_runtime_and_landing_trigger(tpl: dict[str, Any]) -> None:
    fns = _of_type(tpl, "AWS::Serverless::Function")
    zipped = {k: f for k, f in fns.items() if f["Properties"].get("PackageType") != "Image"}
    handlers = sorted(f["Properties"]["Handler"] for f in zipped.values())
    assert handlers == sorted(f"lakeline.aws.handlers.{h}" for h in
                              ("ingest_handler", "transform_handler", "promote_handler", "run_summary_handler",
                               "catalog_handler", *["workflow_task_handler"] * 15, "pipeline_job_handler"))
    for f in zipped.values():
        assert f["Properties"]["Runtime"] == "python3.12"
        assert f["Properties"]["Architectures"] == ["x86_64"]
        assert f["Properties"]["CodeUri"] == "package/lakeline-lambda.zip"
    # the retail and totesys jobs need pyiceberg / SQLAlchemy, which the zip cannot hold: images
    images = {k: f for k, f in fns.items() if k not in zipped}
    assert sorted(images) == ["JobRetailFunction", "JobTotesysFunction"]
    for f in images.values():
        assert f["Metadata"]["DockerContext"] == "package" and f["Properties"]["Architectures"] == ["x86_64"]
        assert "Handler" not in f["Properties"] and "CodeUri" not in f["Properties"]
    ingest = fns["IngestFunction"]["Properties"]
    event = ingest["Events"]["LandingObjectCreated"]
    assert event["Type"] == "S3" and event["Properties"]["Bucket"] == {"Ref": "LandingBucket"}
    assert ingest["DeadLetterQueue"]["TargetArn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}


def test_function_environment_is_a_valid_aws_profile(tpl: dict[str, Any], tmp_path: Path) -> None:
    for name, fn in _of_type(tpl, "AWS::Serverless::Function").items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["LAKELINE__LAKE__PROFILE"] == "aws"
        # intrinsic values become placeholders; the names must all be settings lakeline knows
        flat = {k: v if isinstance(v, str) else f"s3://{k.lower()}/" for k, v in env.items()}
        settings = load_settings(tmp_path, environ=flat)
        assert settings.lake.profile == "aws", name
        for zone in ZONES:
            assert f"LAKELINE__AWS__ZONE_{zone.upper()}" in env, name


def test_outputs_configure_a_workstation(tpl: dict[str, Any]) -> None:
    described = {o["Description"] for o in tpl["Outputs"].values()}
    needed = {f"LAKELINE__AWS__{f.name.upper()}" for f in dataclasses.fields(AwsSettings)
              if f.name not in {"endpoint_url", "max_attempts"}}
    assert needed <= described
    assert "LAKELINE__LAKE__NAME" in described
    for key in ("AthenaWorkGroupName", "StateTableName", "NotificationTopicArn", "LandingBucketName",
                "TransformQueueUrl"):
        assert key in tpl["Outputs"]


# ------------------------------------------------------------------ notifications, alarms, SQL


def test_topic_is_encrypted_and_alarms_watch_dlqs_and_errors(tpl: dict[str, Any]) -> None:
    res = tpl["Resources"]
    assert res["NotificationTopic"]["Properties"]["KmsMasterKeyId"]
    alarms = list(_of_type(tpl, "AWS::CloudWatch::Alarm").values())
    for dlq in ("IngestDeadLetterQueue", "TransformDeadLetterQueue"):
        match = [a["Properties"] for a in alarms if a["Properties"]["Dimensions"]
                 == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]]
        assert len(match) == 1, dlq
        a = match[0]
        assert a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert a["Threshold"] == 0 and a["ComparisonOperator"] == "GreaterThanThreshold"
        assert {"Ref": "NotificationTopic"} in a["AlarmActions"]
    for fn in _of_type(tpl, "AWS::Serverless::Function"):
        assert any(a["Properties"]["MetricName"] == "Errors" and a["Properties"]["Dimensions"][0]["Value"]
                   == {"Ref": fn} for a in alarms), fn
    body = res["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    titles = " ".join(w["properties"]["title"] for w in widgets)
    for word in ("Queue depth", "DLQ depth", "errors", "duration"):
        assert word in titles


def test_glue_tables_use_partition_projection(tpl: dict[str, Any], tmp_path: Path) -> None:
    tmp_home = tmp_path
    tables = {t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
              for t in _of_type(tpl, "AWS::Glue::Table").values()}
    spec = SHIPMENTS.stream(load_settings(tmp_home))
    assert set(tables) == {rt.name for rt in spec.tables} | {"transactions"}  # every silver table
    runs = tables.pop("transactions")
    assert [k["Name"] for k in runs["PartitionKeys"]] == ["year", "month", "schema_v"]
    assert runs["Parameters"]["projection.month.digits"] == "2"
    assert runs["Parameters"]["storage.location.template"]["Fn::Sub"].endswith(
        "/mortgages/transactions/year=${!year}/month=${!month}/schema_v=${!schema_v}/current/")
    assert {"Name": "TransactionAmount", "Type": "decimal(18,2)"} in runs["StorageDescriptor"]["Columns"]
    types = {"string": "string", "timestamp": "timestamp", "float64": "double", "int64": "bigint"}
    for rt in spec.tables:
        t = tables[rt.name]
        p = t["Parameters"]
        assert p["projection.enabled"] == "true" and p["projection.dt.type"] == "date"
        assert p["projection.dt.format"] == "yyyy-MM-dd"
        template = p["storage.location.template"]["Fn::Sub"]
        assert template.startswith("s3://") and template.endswith(f"/{rt.name}/dt=${{!dt}}/")
        assert t["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
        cols = t["StorageDescriptor"]["Columns"]
        assert cols[:-1] == [{"Name": f.name, "Type": types[f.type]} for f in rt.fields]
        assert cols[-1] == {"Name": "_source",
                            "Type": "struct<bucket:string,key:string,etag:string,line_no:bigint>"}
        assert t["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")


def test_athena_workgroup_limits_scans_and_encrypts_results(tpl: dict[str, Any]) -> None:
    cfg = tpl["Resources"]["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert cfg["BytesScannedCutoffPerQuery"] >= 10_000_000
    assert cfg["EnforceWorkGroupConfiguration"] is True
    result = cfg["ResultConfiguration"]
    assert result["EncryptionConfiguration"]["EncryptionOption"] in {"SSE_S3", "SSE_KMS"}
    assert result["OutputLocation"]["Fn::Sub"].startswith("s3://")


# ------------------------------------------------------------------ the command


def test_cli_sam_json_arm64_and_readme(tmp_path: Path) -> None:
    result = CliRunner().invoke(deploy, ["sam", "--out", str(tmp_path), "--arm64", "--name", "acme-lake",
                                         "--json"])
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.stdout)
    assert data["architecture"] == "arm64" and data["resources"] > 40
    tpl = yaml.safe_load((tmp_path / "template.yaml").read_text("utf-8"))
    for fn in _of_type(tpl, "AWS::Serverless::Function").values():
        assert fn["Properties"]["Architectures"] == ["arm64"]
    assert tpl["Resources"]["StateTable"]["Properties"]["TableName"] == "acme-lake-state"
    readme = (tmp_path / "README.md").read_text("utf-8")
    assert "@" + "NAME@" not in readme
    for needle in ("lakeline deploy package", "manylinux2014_aarch64", "sam build && sam deploy",
                   "sam deploy --guided", "LAKELINE__LAKE__PROFILE=aws", "lakeline run --profile aws",
                   "object_versions", "DeleteMarkers", "sam delete", "Cost"):
        assert needle in readme, needle


def test_cli_sam_refuses_bad_names_and_mismatched_packages(tmp_path: Path) -> None:
    bad = CliRunner().invoke(deploy, ["sam", "--out", str(tmp_path), "--name", "Bad_Name"])
    assert isinstance(bad.exception, UsageError)
    pkg = tmp_path / "package"
    pkg.mkdir()
    (pkg / "lakeline-lambda.zip").write_bytes(b"")
    (pkg / "lakeline-lambda.json").write_bytes(orjson.dumps({"architecture": "x86_64"}))
    mismatch = CliRunner().invoke(deploy, ["sam", "--out", str(tmp_path), "--arm64"])
    assert isinstance(mismatch.exception, UsageError)
    assert "manylinux2014_aarch64" in str(mismatch.exception)
    ok = CliRunner().invoke(deploy, ["sam", "--out", str(tmp_path)])
    assert ok.exit_code == 0, ok.output


# ------------------------------------------------------------------ workflows


def _task_functions(tpl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task functions by the FunctionName the shipped definitions use (lakeline-notify, …)."""
    return {f["Properties"]["Environment"]["Variables"]["LAKELINE_WORKFLOW_TASK"]: dict(f, logical=k)
            for k, f in _of_type(tpl, "AWS::Serverless::Function").items()
            if "LAKELINE_WORKFLOW_TASK" in f["Properties"]["Environment"]["Variables"]}


def test_every_shipped_workflow_is_a_state_machine_with_its_definition_unchanged(tpl: dict[str, Any]) -> None:
    machines = _of_type(tpl, "AWS::Serverless::StateMachine")
    tasks = _task_functions(tpl)
    assert sorted(machines) == ["CarbonStateMachine", "EtlPromoteStateMachine", "OpsReplayQualityStateMachine",
                                "QualityGateStateMachine"]
    assert sorted(tasks) == sorted(f"lakeline-{t}" for t in (
        "run-batch", "run-summary", "promote", "notify", "replay", "process", "compact", "quality-check",
        "quality-gate", "quarantine",
        "carbon-kickoff", "carbon-dq", "carbon-split", "carbon-calculate", "carbon-publish"))
    for workflow, machine in workflows(builtin_registry()).items():
        props = machines[_camel_sm(workflow)]["Properties"]
        exported = export(machine)
        assert props["Definition"] == exported["definition"]
        assert props["Type"] == "STANDARD" and props["Name"] == "lakeline-" + workflow.replace("_", "-")
        # every placeholder maps to the ARN of the function that runs that task
        assert props["DefinitionSubstitutions"] == {
            key: {"Fn::GetAtt": [tasks[fn]["logical"], "Arn"]} for key, fn in exported["substitutions"].items()}
        # its role may invoke exactly those functions and nothing else
        role = tpl["Resources"][props["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "states.amazonaws.com"}
        [statement] = [st for p in role["Policies"] for st in p["PolicyDocument"]["Statement"]]
        assert statement["Action"] == ["lambda:InvokeFunction"]
        assert sorted(r["Fn::GetAtt"][0] for r in statement["Resource"]) == sorted(
            {tasks[fn]["logical"] for fn in exported["substitutions"].values()})
    assert tpl["Outputs"]["QualityGateStateMachineArn"]["Value"] == {"Ref": "QualityGateStateMachine"}


def _camel_sm(workflow: str) -> str:
    return "".join(p.capitalize() for p in workflow.split("_")) + "StateMachine"


def test_task_functions_touch_only_what_their_step_needs(tpl: dict[str, Any]) -> None:
    tasks = _task_functions(tpl)

    def grants(fn: str) -> dict[str, list[str]]:
        role = tpl["Resources"][tasks[fn]["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        out: dict[str, list[str]] = {}
        for st in role["Policies"][0]["PolicyDocument"]["Statement"]:
            out[st["Sid"]] = sorted(json.dumps(r) for r in _as_list(st["Resource"]))
        return out

    notify = grants("lakeline-notify")
    assert not {"ReadZoneObjects", "ReadWriteZoneObjects", "SendMessages"} & set(notify)
    assert tasks["lakeline-notify"]["Properties"]["FunctionName"] == "lakeline-notify"
    gate = grants("lakeline-quality-gate")
    assert gate["ReadZoneObjects"] == [json.dumps({"Fn::Sub": "arn:${AWS::Partition}:s3:::lakeline-silver-"
                                                   "${AWS::AccountId}-${AWS::Region}/*"})]
    assert gate["ReadWriteZoneObjects"] == [json.dumps({"Fn::Sub": "arn:${AWS::Partition}:s3:::lakeline-gold-"
                                                        "${AWS::AccountId}-${AWS::Region}/*"})]
    assert grants("lakeline-replay")["SendMessages"] == [json.dumps({"Fn::GetAtt": ["IngestQueue", "Arn"]})]
    for fn in ("lakeline-run-summary", "lakeline-quality-check", "lakeline-notify", "lakeline-quarantine"):
        state = tpl["Resources"][tasks[fn]["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        [table] = [st for st in state["Policies"][0]["PolicyDocument"]["Statement"] if st["Sid"] == "StateTable"]
        assert "dynamodb:PutItem" not in table["Action"], fn


def test_deployed_definition_runs_unchanged_on_the_local_engine(tpl: dict[str, Any], home: Path, tmp_path: Path) -> None:
    """Substitute the ARNs as CloudFormation would, bind each deployed function to the step its
    LAKELINE_WORKFLOW_TASK names (what workflow_task_handler does) and run the quality gate."""
    from lakeline.workflow.engine import TaskRegistry, run_definition
    from tests.functional.helpers import land, rec, run, settings

    s = settings(home)
    lake = Lake.open(s)
    rows = [rec(shipment_id=f"shp_{i}", weight_kg=5.0) for i in range(3)] + [rec(shipment_id="shp_0", weight_kg=250.0)]
    land(lake, "shipments/a.jsonl", b"\n".join(json.dumps(r).encode() for r in rows) + b"\n")
    run(s)
    props = _of_type(tpl, "AWS::Serverless::StateMachine")["QualityGateStateMachine"]["Properties"]
    arns = {}
    for key, att in props["DefinitionSubstitutions"].items():
        fn = tpl["Resources"][att["Fn::GetAtt"][0]]["Properties"]
        arns[key] = f"arn:aws:lambda:eu-west-1:123456789012:function:{fn['FunctionName']}"
    text = json.dumps(props["Definition"])
    for key, arn in arns.items():
        text = text.replace("${" + key + "}", arn)
    assert "${" not in text
    local = lake_tasks(lake, registry(lake.settings))
    deployed = TaskRegistry()
    for fn in _task_functions(tpl).values():
        env_task = fn["Properties"]["Environment"]["Variables"]["LAKELINE_WORKFLOW_TASK"]
        step, _, _ = local.resolve("arn:aws:states:::lambda:invoke", {"FunctionName": env_task})
        deployed.register(fn["Properties"]["FunctionName"], step)
    ex = run_definition(json.loads(text), {"record_type": "shipments", "dt": "2026-01-05"},
                        tasks=deployed, name="deployed", store=lake.state)
    assert (ex.status, ex.error) == ("FAILED", "QualityGateFailed")
    assert (home / "zones/silver/_quarantine/shipments/dt=2026-01-05/deployed.json").exists()
    notes = (home / "outbox" / "notifications.jsonl").read_text().splitlines()
    assert json.loads(notes[-1])["subject"] == "Data Quality check failed"
