"""Issue 17, parts 1-3: `deploy sam` wires every pipeline's triggers and schedules from what the
pipeline declares (the protocol), for the built-in pipelines and for a user's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lakeline.config import load_settings
from lakeline.deploy import jobs
from lakeline.deploy.sam import TemplateOptions, build_template, builtin_registry
from lakeline.errors import UsageError
from lakeline.lake import Lake, init_home
from lakeline.pipelines import JobFunction, Pipeline, Report, Schedule, Trigger
from lakeline.pipelines.registry import register_pipeline, registry, unregister_pipeline
from tests.aws_server import moto_endpoint  # noqa: F401

RULES = """
[pipelines.totesys]
source_url = "postgresql://postgres@127.0.0.1:5432/totesys"
schedule = "rate(15 minutes)"

[pipelines.retail]
schedule = "cron(30 2 * * ? *)"

[[rules]]
name = "gate-new-partitions"
event = { zone = "silver", prefix = "shipments/", suffix = ".parquet" }
workflow = "quality_gate"
input = '{"record_type": "shipments"}'

[[rules]]
name = "nightly-ops"
schedule = "cron(15 1 * * ? *)"
workflow = "ops_replay_quality"
input = '{"src_prefix": "bronze/shipments/", "window_hours": 24}'
"""


def _resources(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == kind}


def _statements(tpl: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    return {st["Sid"]: st for st in tpl["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]}


def _plan(tpl: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    text = tpl["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]["LAKELINE_TRIGGERS"]
    return json.loads(text["Fn::Sub"])


@pytest.fixture(scope="module")
def tpl() -> dict[str, Any]:
    return build_template(TemplateOptions())


def test_every_landing_prefix_of_the_reference_pipelines_has_its_trigger(tpl: dict[str, Any]) -> None:
    reg = builtin_registry()
    ingest = tpl["Resources"]["IngestFunction"]["Properties"]
    # one S3 notification on the whole landing bucket: every landed object reaches ingest
    [event] = ingest["Events"].values()
    assert event["Properties"] == {"Bucket": {"Ref": "LandingBucket"}, "Events": "s3:ObjectCreated:*"}
    plan = _plan(tpl)
    streams = sorted(p.name for p in reg if p.stream(reg.settings) is not None)
    jobs_ = sorted(p.name for p in reg if p.stream(reg.settings) is None and p.landing_prefix)
    assert streams == ["shipments"] and jobs_ == ["carbon", "retail", "transactions"]
    assert sorted(plan) == jobs_  # streams are chunked by ingest itself
    assert plan["carbon"] == [{"prefix": "carbon/", "state_machine": "${CarbonStateMachine}", "input": {}}]
    # serial: through the job queue, whose function starts etl_promote when something is pending
    assert plan["transactions"] == [{"prefix": "transactions/", "queue": "${JobTransactionsQueue}"}]
    job = tpl["Resources"]["JobTransactionsFunction"]["Properties"]["Environment"]["Variables"]
    assert json.loads(job["LAKELINE_TRIGGERS"]["Fn::Sub"]) == {"transactions": [{
        "prefix": "transactions/", "state_machine": "${EtlPromoteStateMachine}",
        "input": {"schema_version": "v1", "silver_prefix": "mortgages/transactions"}}]}
    watch = _statements(tpl, "JobTransactionsFunctionRole")
    assert watch["StartWorkflows"]["Resource"] == [{"Ref": "EtlPromoteStateMachine"}]
    assert watch["WatchExecutions"]["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:"
                                                     "${AWS::AccountId}:execution:${EtlPromoteStateMachine.Name}:*"}]
    assert plan["retail"] == [{"prefix": "retail/", "queue": "${JobRetailQueue}"}]
    # every name the plan uses is a resource of the template, and ingest may use exactly those
    for entries in plan.values():
        for e in entries:
            target = (e.get("queue") or e["state_machine"])[2:-1]
            assert target in tpl["Resources"]
    grants = _statements(tpl, "IngestFunctionRole")
    assert grants["StartWorkflows"]["Resource"] == [{"Ref": "CarbonStateMachine"}]
    assert {"Fn::GetAtt": ["JobRetailQueue", "Arn"]} in grants["SendMessages"]["Resource"]
    assert {"Fn::GetAtt": ["JobTransactionsQueue", "Arn"]} in grants["SendMessages"]["Resource"]


def test_the_retail_job_queue_is_fifo_with_a_dlq_alarm_and_feeds_its_function(tpl: dict[str, Any]) -> None:
    r = tpl["Resources"]
    queue = r["JobRetailQueue"]["Properties"]
    assert queue["FifoQueue"] is True and queue["ContentBasedDeduplication"] is True
    assert queue["QueueName"] == "lakeline-job-retail.fifo"
    assert queue["VisibilityTimeout"] == 6 * r["JobRetailFunction"]["Properties"]["Timeout"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["JobRetailDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": 3}
    assert r["JobRetailDeadLetterQueue"]["Properties"]["FifoQueue"] is True
    mapping = r["JobRetailQueueEventSourceMapping"]["Properties"]
    assert mapping["FunctionName"] == {"Ref": "JobRetailFunction"}
    assert "JobRetailDeadLetterQueueDepthAlarm" in r
    env = r["JobRetailFunction"]["Properties"]["Environment"]["Variables"]
    assert env["LAKELINE_PIPELINE"] == "retail"
    assert _statements(tpl, "JobRetailFunctionRole")["ConsumeQueue"]["Resource"] == {
        "Fn::GetAtt": ["JobRetailQueue", "Arn"]}


def test_each_totesys_packet_in_raw_starts_its_job_function(tpl: dict[str, Any]) -> None:
    fn = tpl["Resources"]["JobTotesysFunction"]["Properties"]
    assert fn["Events"] == {"RawObjectCreated0": {"Type": "S3", "Properties": {
        "Bucket": {"Ref": "RawBucket"}, "Events": "s3:ObjectCreated:*",
        "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "totesys/"}]}}}}}
    grants = _statements(tpl, "JobTotesysFunctionRole")
    assert grants["WriteParameters"]["Action"] == ["ssm:PutParameter"]
    assert "WriteParameters" not in _statements(tpl, "JobRetailFunctionRole")


def test_declared_schedules_and_rules_become_eventbridge_schedules(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    init_home(home)
    (home / "lakeline.toml").write_text((home / "lakeline.toml").read_text() + RULES)
    tpl = build_template(TemplateOptions(), registry(load_settings(home)))
    schedules = {v["Properties"]["Name"]: v["Properties"] for v in _resources(tpl, "AWS::Scheduler::Schedule").values()}
    assert {n: (p["ScheduleExpression"], p["Target"]["Input"]) for n, p in schedules.items()} == {
        "lakeline-catalog-sync": ("rate(1 hour)", "{}"),
        "lakeline-retail": ("cron(30 2 * * ? *)", '{"schedule": "retail"}'),
        "lakeline-totesys": ("rate(15 minutes)", '{"schedule": "totesys"}'),
        "lakeline-rule-nightly-ops": ("cron(15 1 * * ? *)", '{"src_prefix": "bronze/shipments/", "window_hours": 24}'),
    }
    for p in schedules.values():
        assert p["ScheduleExpressionTimezone"] == "UTC" and p["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert p["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
        assert p["Target"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["SchedulesDeadLetterQueue", "Arn"]}}
        assert p["Target"]["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert schedules["lakeline-retail"]["Target"]["Arn"] == {"Fn::GetAtt": ["JobRetailFunction", "Arn"]}
    assert schedules["lakeline-rule-nightly-ops"]["Target"]["Arn"] == {"Ref": "OpsReplayQualityStateMachine"}
    grants = _statements(tpl, "SchedulerRole")
    assert grants["InvokeJobFunctions"]["Resource"] == [{"Fn::GetAtt": ["CatalogFunction", "Arn"]},
                                                        {"Fn::GetAtt": ["JobRetailFunction", "Arn"]},
                                                        {"Fn::GetAtt": ["JobTotesysFunction", "Arn"]}]
    assert grants["StartWorkflows"]["Resource"] == [{"Ref": "OpsReplayQualityStateMachine"}]
    assert "SchedulesDeadLetterQueueDepthAlarm" in tpl["Resources"]


class Ledgers(Pipeline):
    """A user's own job pipeline: nothing in lakeline names it."""

    name = "ledgers"

    def run(self, lake: Lake) -> list[Report]:
        return [Report(self.name, "SUCCEEDED", "ledgers: nothing to do")]

    def schedules(self, settings: Any) -> list[Schedule]:
        return [Schedule("close", "cron(0 23 L * ? *)", self.run)]

    def job_function(self) -> JobFunction:
        return JobFunction(memory=512, timeout=120, s3_read=("landing",), s3_write=("gold",))


def test_a_users_job_pipeline_gets_its_function_queue_and_schedule(tmp_path: Path) -> None:
    pipeline = register_pipeline(Ledgers())
    try:
        home = tmp_path / "lake"
        init_home(home)
        tpl = build_template(TemplateOptions(), registry(load_settings(home)))
    finally:
        unregister_pipeline("ledgers")
    fn = tpl["Resources"]["JobLedgersFunction"]["Properties"]
    assert (fn["MemorySize"], fn["Timeout"], fn["Environment"]["Variables"]["LAKELINE_PIPELINE"]) == (
        512, 120, "ledgers")
    assert _plan(tpl)["ledgers"] == [{"prefix": "ledgers/", "queue": "${JobLedgersQueue}"}]
    assert tpl["Resources"]["LedgersCloseSchedule"]["Properties"]["ScheduleExpression"] == "cron(0 23 L * ? *)"
    grants = _statements(tpl, "JobLedgersFunctionRole")
    assert grants["ReadWriteZoneObjects"]["Resource"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:s3:::lakeline-gold-${AWS::AccountId}-${AWS::Region}/*"}]
    assert pipeline.triggers(load_settings(home)) == [Trigger("ledgers/")]


class Overlapping(Pipeline):
    name = "packets_b"

    def triggers(self, settings: Any) -> list[Trigger]:
        return [Trigger("totesys/2026/", zone="raw")]


def test_overlapping_trigger_prefixes_are_refused_naming_both(tmp_path: Path) -> None:
    register_pipeline(Overlapping())
    try:
        home = tmp_path / "lake"
        init_home(home)
        with pytest.raises(UsageError, match="pipelines packets_b and totesys: triggers on raw/totesys/2026/ "
                                             "and raw/totesys/ overlap"):
            build_template(TemplateOptions(), registry(load_settings(home)))
    finally:
        unregister_pipeline("packets_b")


def test_a_trigger_naming_a_workflow_the_pipeline_does_not_ship_is_refused() -> None:
    class Broken(Pipeline):
        name = "broken"

        def triggers(self, settings: Any) -> list[Trigger]:
            return [Trigger("broken/", workflow="nope")]

    reg = builtin_registry()
    reg.pipelines["broken"] = Broken()
    with pytest.raises(UsageError, match="pipeline broken: its trigger starts workflow 'nope', which it does not ship"):
        jobs.job_specs(reg)


def test_the_parameters_a_lake_writes_on_aws_lie_under_its_granted_path(moto_endpoint: str,  # noqa: F811
                                                                        tmp_path: Path) -> None:
    """The roles may read (and totesys's job function write) ``parameter/<lake>/*`` only: the
    lake's parameter store must root every name there, or a lake not named "lakeline" is
    refused its own watermarks on AWS."""
    from tests.aws_server import boto_client, unique
    from tests.integration.aws_lake import aws_settings, provision

    overrides = provision(moto_endpoint)
    name = unique("lk")[:20]
    lake = Lake.open(aws_settings(tmp_path / "ws", {**overrides, "lake.name": name}))
    lake.params.put("/lakeline/totesys/payment_latest_packet_id", "7")
    names = [p["Name"] for p in boto_client("ssm", moto_endpoint).describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [f"/{name}/"]}])["Parameters"]]
    tpl = build_template(TemplateOptions(name=name))
    granted = _statements(tpl, "JobTotesysFunctionRole")["WriteParameters"]["Resource"]["Fn::Sub"]
    assert names == [f"/{name}/lakeline/totesys/payment_latest_packet_id"]
    assert granted.endswith(f":parameter/{name}/*")
    assert lake.params.get("/lakeline/totesys/payment_latest_packet_id") == "7"


def test_a_failed_workflow_execution_is_published_to_the_topic(tpl: dict[str, Any]) -> None:
    rule = tpl["Resources"]["WorkflowFailedRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    machines = sorted(k for k, v in tpl["Resources"].items() if v["Type"] == "AWS::Serverless::StateMachine")
    assert sorted(m["Ref"] for m in pattern["detail"]["stateMachineArn"]) == machines
    assert rule["Targets"][0]["Arn"] == {"Ref": "NotificationTopic"}
    policy = tpl["Resources"]["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Principal"] == {"Service": "events.amazonaws.com"}
    assert policy["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["WorkflowFailedRule", "Arn"]}}}
    key = tpl["Resources"]["NotificationKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert "events.amazonaws.com" in [s["Principal"].get("Service") for s in key]


def test_event_rules_become_eventbridge_rules_on_their_zone_bucket(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    init_home(home)
    (home / "lakeline.toml").write_text((home / "lakeline.toml").read_text() + RULES)
    tpl = build_template(TemplateOptions(), registry(load_settings(home)))
    r = tpl["Resources"]
    rule = r["RuleGateNewPartitionsEventRule"]["Properties"]
    assert rule["EventPattern"] == {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {
        "bucket": {"name": [{"Fn::Sub": "lakeline-silver-${AWS::AccountId}-${AWS::Region}"}]},
        "object": {"key": [{"wildcard": "shipments/*.parquet"}]}}}
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": "QualityGateStateMachine"}
    assert json.loads(target["InputTransformer"]["InputTemplate"].replace("<size>", "1").replace(
        "<bucket>", "b").replace("<key>", "k").replace("<etag>", "e")) == {
        "record_type": "shipments", "bucket": "b", "key": "k", "size": 1, "etag": "e"}
    assert r["SilverBucket"]["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert "NotificationConfiguration" not in r["LandingBucket"]["Properties"]
    assert _statements(tpl, "EventRulesRole")["StartWorkflows"]["Resource"] == [{"Ref": "QualityGateStateMachine"}]


def test_the_template_with_every_kind_of_trigger_passes_cfn_lint_and_checkov(tmp_path: Path) -> None:
    import subprocess

    from lakeline.deploy.sam import write_sam
    from tests.integration.test_deploy_sam import _tool

    home = tmp_path / "lake"
    init_home(home)
    (home / "lakeline.toml").write_text((home / "lakeline.toml").read_text() + RULES)
    out = tmp_path / "sam"
    write_sam(out, TemplateOptions(), registry(load_settings(home)))
    done = subprocess.run([_tool("cfn-lint"), "template.yaml"], cwd=out, capture_output=True, text=True)
    assert done.returncode & 3 == 0, done.stdout  # no fatal (1) or error (2) finding
    proc = subprocess.run([_tool("checkov"), "-f", "template.yaml", "--framework", "cloudformation", "--output",
                           "json", "--quiet", "--skip-download"], cwd=out, capture_output=True, text=True)
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = report["results"].get("failed_checks", [])
    assert report["summary"]["failed"] == 0, [(f["check_id"], f["resource"]) for f in failed]


def test_the_idle_cost_figures_of_the_aws_guide_match_the_template(tpl: dict[str, Any]) -> None:
    """The AWS guide prices an idle lake from these counts: change them, change the guide."""
    count = {kind: len(_resources(tpl, kind)) for kind in (
        "AWS::KMS::Key", "AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::Lambda::EventSourceMapping")}
    assert count == {"AWS::KMS::Key": 1, "AWS::CloudWatch::Alarm": 28, "AWS::CloudWatch::Dashboard": 1,
                     "AWS::Lambda::EventSourceMapping": 4}
    text = (Path(__file__).resolve().parents[2] / "docs" / "how-to" / "run-on-aws.md").read_text()
    assert "28 CloudWatch alarms" in text and "the 4 queues with event source mappings" in text


def test_jobs_needing_more_than_the_zip_are_images_with_a_dockerfile(tmp_path: Path) -> None:
    from lakeline.deploy.sam import write_sam

    write_sam(tmp_path, TemplateOptions())
    docker = (tmp_path / "package" / "Dockerfile.job-retail").read_text()
    assert docker.splitlines()[1:] == [
        "FROM public.ecr.aws/lambda/python:3.12",
        "COPY code/ ${LAMBDA_TASK_ROOT}/",
        'RUN pip install --no-cache-dir --target "${LAMBDA_TASK_ROOT}" '
        "'pyiceberg[glue,pyarrow,pyiceberg-core]>=0.9,<1'",
        'CMD ["lakeline.aws.handlers.pipeline_job_handler"]']
    assert "'sqlalchemy>=2.0,<3' 'psycopg[binary]>=3.1,<4'" in (tmp_path / "package" / "Dockerfile.job-totesys").read_text()
    tpl = build_template(TemplateOptions())
    retail = tpl["Resources"]["JobRetailFunction"]
    assert (retail["Properties"]["PackageType"], retail["Metadata"]["Dockerfile"]) == ("Image", "Dockerfile.job-retail")
    grants = _statements(tpl, "JobRetailFunctionRole")
    assert grants["IcebergNamespaces"]["Resource"][1] == {
        "Fn::Sub": "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/retail_silver"}
    assert {"Fn::Sub": "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/retail_silver/*"} in \
        grants["RegisterTables"]["Resource"]
