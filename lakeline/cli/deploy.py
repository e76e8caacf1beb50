"""``lakeline deploy``: the SAM template and the Lambda package for running on AWS.

Nothing here calls AWS: ``sam`` writes files, ``package`` runs pip. Deploy with the SAM CLI
(``sam build && sam deploy --guided``) as the generated README explains.
"""

from __future__ import annotations

from pathlib import Path

import click

from lakeline.cli.context import settings
from lakeline.console import emit_json, emit_kv
from lakeline.deploy.package import PLATFORMS, build_package, read_manifest
from lakeline.deploy.sam import TemplateOptions, write_sam
from lakeline.errors import UsageError
from lakeline.pipelines.registry import registry


@click.group()
def deploy() -> None:
    """Generate what deploying to AWS needs: a SAM template and the Lambda package.

    \b
    Typical use:
      lakeline deploy sam --out build                 # build/template.yaml + build/README.md
      lakeline deploy package --out build/package     # build/package/lakeline-lambda.zip
      cd build && sam build && sam deploy --guided
    """


@deploy.command("sam")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for template.yaml and README.md (created if missing).")
@click.option("--arm64", is_flag=True, help="Graviton functions (arm64); default x86_64.")
@click.option("--name", default="lakeline", show_default=True,
              help="Lake name: prefixes every bucket, queue, table, topic and workgroup.")
@click.option("--code-uri", default="package/lakeline-lambda.zip", show_default=True,
              help="Lambda code, relative to --out (what `deploy package --out OUT/package` builds).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sam(out_dir: str, arm64: bool, name: str, code_uri: str, as_json: bool) -> None:
    """Write an AWS SAM template (and its README) for a lake on AWS serverless.

    The template holds a bucket per zone, the ingest and transform queues with DLQs, the
    DynamoDB state table, the Lambda functions with least-privilege roles, the S3 trigger
    and SQS event source mapping, an SNS topic, alarms, a dashboard, Glue tables with
    partition projection and an Athena workgroup.
    """
    opts = TemplateOptions(name=name, arm64=arm64, code_uri=code_uri)
    out = Path(out_dir)
    manifest = read_manifest(out / code_uri) if code_uri.endswith(".zip") else None
    if manifest and manifest.get("architecture") != opts.architecture:
        wanted = next(p for p, a in PLATFORMS.items() if a == opts.architecture)
        raise UsageError(
            f"{out / code_uri} was built for {manifest.get('architecture')}, the template is "
            f"{opts.architecture}: rebuild it with `lakeline deploy package --platform {wanted}` "
            f"or {'drop' if arm64 else 'add'} --arm64"
        )
    result = write_sam(out, opts, registry(settings()))
    data = result.to_dict()
    data["package_found"] = (out / code_uri).exists()
    if as_json:
        emit_json(data)
        return
    click.echo(f"wrote {result.template} ({result.resources} resources, {result.architecture}) "
               f"and {result.readme}")
    if not data["package_found"]:
        click.echo(f"next: lakeline deploy package --out {out / Path(code_uri).parent}"
                   f"{' --platform manylinux2014_aarch64' if arm64 else ''}", err=True)
    click.echo(f"then: cd {out} && sam build && sam deploy --guided", err=True)


@deploy.command("package")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for lakeline-lambda.zip (and the unpacked tree in code/).")
@click.option("--platform", type=click.Choice(["manylinux2014_x86_64", "manylinux2014_aarch64"]),
              default="manylinux2014_x86_64", show_default=True,
              help="Wheel platform; must match the template's architecture (aarch64 = --arm64).")
@click.option("--python-version", default="3.12", show_default=True,
              help="CPython version of the wheels (the template's runtime is python3.12).")
@click.option("--latest", is_flag=True,
              help="Newest versions the declared ranges allow (default: the versions installed here).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def package(out_dir: str, platform: str, python_version: str, latest: bool, as_json: bool) -> None:
    """Build the Lambda code package: lakeline and its runtime dependencies, zipped.

    Installs manylinux wheels of pyarrow, duckdb, numpy, orjson, tomli-w and
    aws-lambda-powertools with pip (boto3 comes with the Lambda runtime), pinned to the
    versions installed on this machine unless --latest, copies the lakeline
    source and the lake's own pipelines (HOME/pipelines/*.toml) and models
    (HOME/models/*.sql), drops what a function never loads and zips the result into
    OUT/lakeline-lambda.zip. Fails if pip fails or the package exceeds Lambda's 250 MB.
    """
    result = build_package(Path(out_dir), platform=platform, python_version=python_version,
                           pin_installed=not latest, home=settings().home)
    if as_json:
        emit_json(result.to_dict())
        return
    emit_kv({
        "zip": result.zip_path,
        "zip size": f"{result.zip_bytes / 1e6:.1f} MB",
        "unpacked": f"{result.unpacked_bytes / 1e6:.1f} MB (Lambda limit 262.1 MB)",
        "files": result.files,
        "platform": f"{result.platform} ({result.architecture}), CPython {result.python_version}",
        "installed": ", ".join(result.installed),
        "seconds": result.seconds,
    }, "lambda package")


@deploy.command("local")
@click.option("--endpoint-url", "endpoint", metavar="URL",
              help="An AWS-compatible endpoint: moto's server (`moto_server -p 5000` → "
                   "http://127.0.0.1:5000) or LocalStack (http://127.0.0.1:4566).")
@click.option("--name", default=None, help="Lake name prefixing every resource (default: lake.name).")
@click.option("--teardown", is_flag=True,
              help="Delete what the last `deploy local` made, and its [aws] settings.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def local(endpoint: str | None, name: str | None, teardown: bool, as_json: bool) -> None:
    """Create the lake's AWS resources on an AWS-compatible endpoint and point the lake at them.

    The resources come from the same template `deploy sam` writes: the zone buckets, the
    queues with their DLQs (and the job queues), the DynamoDB tables, the topic, the Glue
    database and tables, the Athena workgroup and, where the endpoint has Step Functions, the
    state machines. Lambda, IAM, alarms and schedules run on AWS only. The `[aws]` table of
    lakeline.toml is written (with endpoint_url), so `--profile aws` works against the
    endpoint:

    \b
      lakeline deploy local --endpoint-url http://127.0.0.1:5000
      lakeline put orders.jsonl --pipeline shipments --profile aws
      lakeline run --profile aws
      lakeline sql "select count(*) from silver.shipments" --profile aws

    Run it again at any time (existing resources are kept); --teardown removes them.
    """
    from lakeline.deploy.local import deploy_local, teardown_local  # heavy: boto3

    s = settings()
    if teardown:
        d = teardown_local(s)
        data = {"status": "success", "removed": sorted(d.resources), "endpoint": d.endpoint}
        if as_json:
            emit_json(data)
        else:
            click.echo(f"removed {len(d.resources)} resources from {d.endpoint} and the [aws] settings")
        return
    if not endpoint:
        raise UsageError("give --endpoint-url URL (or --teardown)")
    d = deploy_local(s, registry(s), endpoint, name=name)
    if as_json:
        emit_json({"status": "success", **d.to_dict()})
        return
    click.echo(f"{len(d.resources)} resources on {endpoint} (account {d.account}, {d.region}); "
               f"{len(d.skipped)} run on AWS only (Lambda, IAM, alarms, schedules)")
    click.echo(f"wrote [aws] to {s.home / 'lakeline.toml'}: use --profile aws")
