"""`appshelf build`: source tree in, signed static registry out."""

from __future__ import annotations

from pathlib import Path

import click

from appshelf.build import BuildOptions, BuildReport, build_registry
from appshelf.site import site_generator


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
@click.option("--no-site", is_flag=True, help="Write only the registry files, no HTML site.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
def command(
    source: Path,
    output: Path,
    key_file: Path | None,
    production: bool,
    previous: Path | None,
    base_url: str | None,
    resign: bool,
    no_site: bool,
    as_json: bool,
) -> None:
    """Build the registry in SOURCE into the output folder."""
    options = BuildOptions(
        key_file=key_file,
        production=production,
        previous=previous,
        resign=resign,
        base_url=base_url,
        generators=() if no_site else (site_generator(),),
    )
    report = build_registry(source, output, options)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    show_report(report)


def show_report(report: BuildReport) -> None:
    for warning in report.warnings:
        click.secho(f"Warning: {warning}", err=True, fg="yellow")
    state = "updated" if report.changed else "unchanged (no file rewritten)"
    click.echo(f"Built {report.output}: {state}")
    click.echo(f"  apps            {report.apps}")
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
        f"  signing key id  {report.key_id}{' (DEVELOPMENT)' if report.development_key else ''}"
    )
    click.echo(f"  time            {report.seconds:.3f} s")
