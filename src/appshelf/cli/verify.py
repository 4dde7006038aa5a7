"""`appshelf verify`: check a whole published registry; non-zero exit on any failure."""

from __future__ import annotations

import dataclasses
import json

import click

from appshelf.cli.client_options import (
    Trust,
    json_option,
    make_client,
    registry_option,
    trust_options,
)
from appshelf.client.verify import VerifyReport, verify_registry
from appshelf.errors import ClientUsageError, VerificationFailedError


@click.command("verify")
@click.argument("location", metavar="[URL|FOLDER|NAME]", required=False)
@registry_option(required=False)
@trust_options
@click.option("--artifacts", is_flag=True, help="Also download and check every artifact.")
@click.option(
    "--external", is_flag=True, help="With --artifacts, also download externally hosted ones."
)
@click.option(
    "--base-url",
    metavar="URL",
    help="The registry's base URL, which its snapshot must name [default: URL itself; "
    "for a FOLDER, whatever registry its signed snapshot names].",
)
@json_option
def command(
    location: str | None,
    registry: str | None,
    trust: Trust,
    artifacts: bool,
    external: bool,
    base_url: str | None,
    as_json: bool,
) -> None:
    """Verify every signature, pinned digest and checksum of a registry (or -r)."""
    location = location or registry  # the argument wins over -r and $APPSHELF_REGISTRY
    if location is None:
        raise ClientUsageError("no registry: pass -r URL|FOLDER|NAME (or the argument)")
    with make_client(location, trust, _base_url(base_url)) as client:
        report = verify_registry(client, artifacts=artifacts, external=external)
    if as_json:
        click.echo(json.dumps({"ok": report.ok, **dataclasses.asdict(report)}, indent=2))
    else:
        show(report, artifacts)
    if not report.ok:
        raise VerificationFailedError(
            f"{len(report.failures)} problem(s) found in {location}; do not use this registry "
            "until they are fixed"
        )


def _base_url(text: str | None) -> str | None:
    """A base URL as snapshots name it: http(s), ending in `/`."""
    if text is None:
        return None
    if not text.startswith(("http://", "https://")) or any(c.isspace() for c in text):
        raise ClientUsageError(f"--base-url: {text!r} is not an http(s):// URL")
    return text if text.endswith("/") else text + "/"


def show(report: VerifyReport, artifacts: bool) -> None:
    click.echo(f"Verifying {report.location}")
    if report.registry is not None:
        click.echo(
            f"  snapshot         version {report.snapshot_version} for {report.registry}, "
            f"expires {report.snapshot_expires}, signed by {(report.keyid or '')[:16]}..."
        )
    click.echo(f"  pinned files     {report.pinned_files} ok")
    click.echo(f"  manifests        {report.manifests} ok (signature, pin, agreement)")
    if report.publisher_signatures:
        click.echo(
            f"  publishers       {report.publisher_signatures} statements ok (publisher's "
            "signature, key in publishers.json, agreement with the manifest)"
        )
    if report.mirror_files:
        click.echo(
            f"  ANIP mirror      {report.mirror_files} files ok (pinned by mirrors/anip.json)"
        )
    if report.log_entries:
        click.echo(
            f"  release log      {report.log_entries} entries ok (checkpoint, root, rules), "
            f"{report.log_versions} versions checked against their release entries"
        )
    if artifacts:
        click.echo(
            f"  artifacts        {report.artifacts_checked} ok ({report.artifact_bytes:,} bytes), "
            f"{len(report.external_skipped)} external skipped"
        )
    else:
        click.echo("  artifacts        not downloaded (pass --artifacts)")
    click.echo(f"  unpinned files   {len(report.unpinned)} (icons, site pages: informational)")
    click.echo(f"  uncovered files  {len(report.uncovered)}")
    for note in report.notes:
        click.echo(f"  note: {note}")
    if report.failures:
        click.secho(f"FAILED: {len(report.failures)} problem(s)", fg="red")
        for failure in report.failures:
            click.echo(f"  - {failure}")
    else:
        click.secho(f"OK: no problems ({report.seconds:.2f}s)", fg="green")
