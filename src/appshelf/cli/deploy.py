"""`appshelf deploy`: upload a built site to S3, incrementally, safely ordered, conditionally."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from appshelf.errors import AppshelfError

if TYPE_CHECKING:  # appshelf.deploy imports boto3 (~0.2 s): only when a command deploys
    from appshelf.deploy import DeployOptions, DeployReport
    from appshelf.source.models import DeploySection


def deploy_config(source: Path | None) -> DeploySection:
    """The [deploy] section of SOURCE/registry.toml, or the defaults."""
    from appshelf.source.models import DeploySection
    from appshelf.source.tree import read_registry_config

    if source is None:
        return DeploySection()
    return read_registry_config(source if source.is_dir() else source.parent).deploy


def s3_options(function: Any) -> Any:
    """Options shared by `deploy` and `build --deploy`, passed on as one `s3` dict."""
    options = [
        click.option("--endpoint-url", help="S3-compatible endpoint (MinIO, SeaweedFS, R2...)."),
        click.option("--profile", help="AWS profile (else the standard AWS_* variables)."),
        click.option("--region", help="AWS region (else the profile's or AWS_REGION)."),
        click.option(
            "--delete",
            is_flag=True,
            help="Remove objects the site no longer has "
            "(never an artifact of a published version).",
        ),
        click.option("--dry-run", is_flag=True, help="Print the plan; change nothing."),
        click.option(
            "--cloudfront-distribution",
            metavar="ID",
            help="Invalidate the changed short-cache paths in this distribution.",
        ),
        click.option(
            "--jobs",
            type=click.IntRange(1, 64),
            default=8,
            show_default=True,
            help="Concurrent uploads.",
        ),
        click.option(
            "--multipart-threshold-mb",
            type=click.IntRange(5, 5000),
            default=64,
            show_default=True,
            help="Upload larger files in parts.",
        ),
    ]

    @functools.wraps(function)
    def collect(**kwargs: Any) -> Any:
        s3 = {name: kwargs.pop(name) for name in _S3_PARAMS}
        return function(s3=s3, **kwargs)

    for option in reversed(options):
        collect = option(collect)
    return collect


_S3_PARAMS = (
    "endpoint_url",
    "profile",
    "region",
    "delete",
    "dry_run",
    "cloudfront_distribution",
    "jobs",
    "multipart_threshold_mb",
)


def check_endpoint_url(value: str | None) -> str | None:
    """An http(s) URL with a host and no user name or password. The messages never show
    the value: a secret pasted into it would end up in CI logs."""
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise AppshelfError(
            "--endpoint-url: must be an http(s):// URL with a host, like "
            "https://s3.example.com (the value is not shown, in case it holds a secret)"
        )
    if "@" in parts.netloc:
        raise AppshelfError(
            "--endpoint-url: must not contain a user name or password (the value is not "
            "shown); pass credentials as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or --profile"
        )
    return value


def make_options(config: DeploySection, s3: dict[str, Any], quiet: bool = False) -> DeployOptions:
    from appshelf.deploy import ClientOptions, DeployOptions

    return DeployOptions(
        client=ClientOptions(
            endpoint_url=check_endpoint_url(s3["endpoint_url"]),
            profile=s3["profile"],
            region=s3["region"],
            jobs=s3["jobs"],
            multipart_threshold=s3["multipart_threshold_mb"] * 1024 * 1024,
        ),
        config=config,
        delete=s3["delete"],
        dry_run=s3["dry_run"],
        cloudfront_distribution=s3["cloudfront_distribution"],
        events=None if quiet else (lambda line: click.echo(line, err=True)),
    )


@click.command("deploy")
@click.argument("site", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("target", metavar="s3://BUCKET[/PREFIX]")
@click.option(
    "--source",
    type=click.Path(path_type=Path, exists=True),
    help="Registry source (or its registry.toml) whose [deploy] settings to use.",
)
@s3_options
@click.option("--json", "as_json", is_flag=True, help="Print the deploy report as JSON.")
def command(
    site: Path,
    target: str,
    source: Path | None,
    as_json: bool,
    s3: dict[str, Any],
) -> None:
    """Upload the built SITE folder to an S3 bucket.

    Only changed files are uploaded (by sha256), artifacts first and the signed snapshot
    last, each write conditional on what was read, so a racing deploy fails cleanly.
    """
    options = make_options(deploy_config(source), s3, quiet=as_json)
    from appshelf.deploy import deploy_site

    report = deploy_site(site, target, options)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        show_report(report)


def show_report(report: DeployReport) -> None:
    for note in report.notes:
        click.secho(f"Note: {note}", err=True, fg="yellow")
    if report.dry_run:
        click.echo(f"Plan for {report.target} (dry run, nothing changed):")
        for item in report.plan:
            if item.action != "skip":
                click.echo(f"  {item.action:<7} {item.path}  ({item.reason}, {item.kind})")
        click.echo(f"  skip    {report.skipped} unchanged file(s)")
    else:
        state = "deployed" if report.uploaded or report.deleted else "already up to date"
        click.echo(f"{report.target}: {state}")
    verbs = ("would upload", "would delete") if report.dry_run else ("uploaded", "deleted")
    click.echo(
        f"  {verbs[0]} {report.uploaded} file(s) ({report.uploaded_bytes} bytes), "
        f"skipped {report.skipped}, {verbs[1]} {report.deleted}"
    )
    requests = ", ".join(f"{op} {n}" for op, n in report.requests.items())
    click.echo(f"  requests {report.requests_total} ({requests})")
    if report.invalidation:
        click.echo(f"  CloudFront invalidation {report.invalidation}")
    elif report.invalidation_paths and report.dry_run:
        click.echo(f"  would invalidate {', '.join(report.invalidation_paths)}")
    click.echo(f"  time     {report.seconds:.3f} s")
