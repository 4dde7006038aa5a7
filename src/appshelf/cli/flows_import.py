"""`appshelf import` and `appshelf sync`: the command lines of appshelf.importer."""

from __future__ import annotations

from pathlib import Path

import click

from appshelf.importer import ImportOptions, SyncOptions, import_flows, sync_tree

_MiB = 1024 * 1024


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        click.secho(f"Warning: {warning}", err=True, fg="yellow")


_CA = click.option(
    "--ca-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also trust the CAs in this PEM bundle for HTTPS.",
)
_VERIFY = click.option(
    "--verify",
    is_flag=True,
    help="Download every artifact and check its SHA-256 (default: HEAD for sizes, "
    "download and hash only when HEAD tells none).",
)
_MAX_JSON = click.option(
    "--max-json-size",
    type=click.IntRange(1),
    default=16 * _MiB,
    show_default=True,
    help="Largest registry.json or versions.json read, in bytes.",
)
_MAX_ARTIFACT = click.option(
    "--max-artifact-size",
    type=click.IntRange(0),
    default=1024 * _MiB,
    show_default=True,
    help="Largest artifact measured or downloaded, in bytes.",
)


@click.command("import")
@click.argument("source")
@click.option(
    "-o",
    "--output",
    "tree",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The appshelf source tree to create (a new or empty folder).",
)
@click.option("--base-url", required=True, help="The new registry's base_url.")
@click.option("--name", help="The new registry's name.")
@click.option(
    "--root-url",
    help="For a folder SOURCE: the URL it is published at (default: guessed from the "
    "apps' appMetadataUrl).",
)
@click.option(
    "--allow-internal-hosts",
    is_flag=True,
    help="Fetch from loopback and private hosts too, and allow them as artifact hosts.",
)
@_VERIFY
@_MAX_JSON
@_MAX_ARTIFACT
@_CA
def import_command(
    source: str,
    tree: Path,
    base_url: str,
    name: str | None,
    root_url: str | None,
    allow_internal_hosts: bool,
    verify: bool,
    max_json_size: int,
    max_artifact_size: int,
    ca_file: Path | None,
) -> None:
    """Import the Flows registry SOURCE (a folder, a registry.json, or a URL) into a new
    appshelf source tree. Federated apps get `upstream` in app.toml: `appshelf sync`
    mirrors their new versions. See docs/import.md."""
    options = ImportOptions(
        base_url=base_url,
        name=name,
        root_url=root_url,
        allow_internal_hosts=allow_internal_hosts,
        verify=verify,
        max_json_bytes=max_json_size,
        max_artifact_bytes=max_artifact_size,
        ca_file=ca_file,
    )
    report = import_flows(source, tree, options)
    _warn(report.warnings)
    click.echo(
        f"Imported {report.apps} apps ({report.versions} versions, {report.icons} icons, "
        f"{len(report.federated)} federated) into {tree}; sizes from {report.heads} HEAD "
        f"requests and {report.downloads} downloads."
    )
    if report.federated:
        click.echo(f"Federated (mirrored by `appshelf sync {tree}`): {', '.join(report.federated)}")


@click.command("sync")
@click.argument("tree", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--app", "apps", multiple=True, help="Only this app (repeatable).")
@click.option(
    "--no-fill",
    is_flag=True,
    help="Do not fill in the missing size/sha256 of artifact_url releases.",
)
@_VERIFY
@_MAX_JSON
@_MAX_ARTIFACT
@_CA
def sync_command(
    tree: Path,
    apps: tuple[str, ...],
    no_fill: bool,
    verify: bool,
    max_json_size: int,
    max_artifact_size: int,
    ca_file: Path | None,
) -> None:
    """Mirror the new versions of federated apps (app.toml `upstream`) into TREE, refusing
    an upstream that changed an imported version, and pin every artifact_url release
    missing its size or sha256. Commit the result; the build never fetches."""
    options = SyncOptions(
        apps=apps,
        fill=not no_fill,
        verify=verify,
        max_json_bytes=max_json_size,
        max_artifact_bytes=max_artifact_size,
        ca_file=ca_file,
    )
    report = sync_tree(tree, options)
    _warn(report.warnings)
    for key, version in report.added:
        click.echo(f"Added {key} {version}")
    for key, version in report.filled:
        click.echo(f"Pinned {key} {version} (size, sha256)")
    click.echo(
        f"Synced {report.upstreams} upstreams: {len(report.added)} versions added, "
        f"{len(report.filled)} pinned."
    )
