"""`appshelf build`: source tree in, signed static registry out."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from appshelf.cli.deploy import deploy_config, make_options, s3_options
from appshelf.cli.deploy import show_report as show_deploy_report

if TYPE_CHECKING:  # the builder is imported when a build runs, not for `build --help`
    from appshelf.builder import BuildOptions, BuildReport
    from appshelf.cli.ingest import Ingest


@click.command("build")
@click.argument("source", type=click.Path(path_type=Path), default=Path("."))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("_site"),
    show_default=True,
    help="Output folder (replaced atomically).",
)
@click.option(
    "--key-file",
    type=click.Path(path_type=Path),
    help="Private key file (else $APPSHELF_SIGNING_KEY, else registry.toml).",
)
@click.option("--production", is_flag=True, help="Refuse the development key.")
@click.option(
    "--previous",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="An earlier output whose published versions must not change.",
)
@click.option("--base-url", help="Use this base URL instead of registry.toml's.")
@click.option("--resign", is_flag=True, help="Sign a fresh snapshot even if nothing changed.")
@click.option(
    "--previous-url",
    metavar="URL",
    help="Start from the registry published at URL (GitHub Pages: CI has no earlier output).",
)
@click.option(
    "--deploy",
    "deploy_target",
    metavar="s3://BUCKET[/PREFIX]",
    help="Start from what is deployed there, build, then deploy (see `appshelf deploy`).",
)
@s3_options
@click.option(
    "--new-registry",
    is_flag=True,
    help="Nothing is published at --previous-url/--deploy yet: start the registry's history.",
)
@click.option(
    "--no-inbox",
    is_flag=True,
    help="With --deploy: leave the publishers' S3 inbox alone this time.",
)
@click.option("--no-site", is_flag=True, help="Write only the registry files, no HTML site.")
@click.option(
    "--site-jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes rendering the site's app pages (default 1: all in this "
    "process). Not --jobs: that is --deploy's concurrent uploads.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
def command(
    source: Path,
    output: Path,
    key_file: Path | None,
    production: bool,
    previous: Path | None,
    base_url: str | None,
    resign: bool,
    previous_url: str | None,
    deploy_target: str | None,
    new_registry: bool,
    no_inbox: bool,
    no_site: bool,
    site_jobs: int | None,
    as_json: bool,
    s3: dict[str, Any],
) -> None:
    """Build the registry in SOURCE into the output folder (and optionally deploy it)."""
    if sum(x is not None for x in (previous, previous_url, deploy_target)) > 1:
        raise click.UsageError("give at most one of --previous, --previous-url and --deploy")
    from appshelf.builder import BuildOptions, build_registry
    from appshelf.site import site_generator

    options = BuildOptions(
        key_file=key_file,
        production=production,
        previous=previous,
        resign=resign,
        base_url=base_url,
        generators=() if no_site else (site_generator(jobs=site_jobs),),
        new_registry=new_registry,
    )
    if previous_url is not None:
        from appshelf.deploy.http import HttpSource

        options.previous_source = HttpSource(previous_url)
    if deploy_target is None:
        report = build_registry(source, output, options)
        if as_json:
            click.echo(report.model_dump_json(indent=2))
        else:
            show_report(report)
        return
    _build_and_deploy(
        source,
        output,
        options,
        deploy_target,
        s3,
        base_url=base_url,
        no_inbox=no_inbox,
        as_json=as_json,
    )


def _build_and_deploy(
    source: Path,
    output: Path,
    options: BuildOptions,
    deploy_target: str,
    s3: dict[str, Any],
    *,
    base_url: str | None,
    no_inbox: bool,
    as_json: bool,
) -> None:
    """`build --deploy`: build on exactly the state that the deploy's conditional writes
    will expect, taking in the publishers' inbox, then deploy."""
    # Imported here: boto3 (~0.2 s) only for a build that deploys.
    from appshelf.builder import build_registry
    from appshelf.cli.ingest import finish, ingest_inbox, restore_ingested, rollback
    from appshelf.deploy import S3Store, S3Target, deploy_site, read_published
    from appshelf.source.models import DeploySection
    from appshelf.source.versionfolder import remove_version

    deploy_options = make_options(DeploySection(), s3, quiet=as_json)
    store = S3Store(S3Target.parse(deploy_target), deploy_options.client)
    options.previous_source, state = read_published(store, deploy_options.client.jobs)
    if no_inbox:
        state.inbox.clear()
    # Ingested versions a checkout lacks (never committed) come back from the bucket.
    warnings, restored = restore_ingested(store, state, source)
    for warning in warnings:
        click.secho(f"Warning: {warning}", err=True, fg="yellow")
    urls = _statement_urls(source, base_url)
    try:
        with ingest_inbox(store, state, source, urls) as ingest:
            report = build_registry(source, output, options)  # also validates registry.toml
            deploy_options = replace(deploy_options, config=deploy_config(source))
            deployed = deploy_site(output, deploy_target, deploy_options, state=state, store=store)
            if deploy_options.dry_run:
                rollback(ingest)  # nothing was deployed: the inbox stays the source of these
    finally:
        if deploy_options.dry_run:
            for folder in restored:  # a dry run leaves the source as it found it
                remove_version(folder)
    if not deploy_options.dry_run:
        finish(store, state, ingest)  # after the with: the versions are deployed, whatever happens
    if as_json:
        body = {"build": report.model_dump(), "deploy": deployed.model_dump(), **ingest.json()}
        click.echo(json.dumps(body, indent=2))
        return
    show_report(report)
    show_deploy_report(deployed)
    show_ingest(ingest)


def _statement_urls(source: Path, base_url: str | None) -> frozenset[str]:
    """Statements name the registry.toml address; a --base-url build accepts that one too."""
    from appshelf.source.tree import read_registry_config

    urls = {read_registry_config(source).registry.base_url}
    if base_url:
        urls.add(base_url if base_url.endswith("/") else base_url + "/")
    return frozenset(urls)


def show_ingest(ingest: Ingest) -> None:
    for refused in ingest.scan.refused:
        click.secho(f"Warning: inbox: refused {refused}", err=True, fg="yellow")
    for waiting in ingest.scan.waiting:
        click.secho(f"Note: inbox: {waiting}", err=True, fg="yellow")
    if ingest.items or ingest.scan.refused:
        click.echo(ingest.line())


def show_report(report: BuildReport) -> None:
    for warning in report.warnings:
        click.secho(f"Warning: {warning}", err=True, fg="yellow")
    state = "updated" if report.changed else "unchanged (no file rewritten)"
    click.echo(f"Built {report.output}: {state}")
    click.echo(f"  apps            {report.apps} ({report.apps_reused} unchanged, reused as built)")
    click.echo(f"  versions        {report.versions}")
    click.echo(
        f"  hashed          {report.artifacts_hashed} artifacts, {report.bytes_hashed} bytes"
    )
    click.echo(
        f"  files           {report.files_total} total, {report.files_written} written, "
        f"{report.files_unchanged} unchanged, {report.files_removed} removed"
    )
    click.echo(
        f"  snapshot        version {report.snapshot_version}, expires {report.snapshot_expires}"
    )
    click.echo(
        f"  release log     {report.log_entries} entries ({report.log_appended} appended; "
        f"{report.log_bytes_read} bytes of the published log read)"
    )
    click.echo(
        f"  signing key id  {report.key_id}{' (DEVELOPMENT)' if report.development_key else ''}"
    )
    click.echo(f"  time            {report.seconds:.3f} s")
