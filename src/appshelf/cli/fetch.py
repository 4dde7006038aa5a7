"""`appshelf fetch`: download verified artifacts for requirements or a lock file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from appshelf.cli.client_options import (
    Trust,
    json_option,
    make_client,
    prerelease_option,
    registry_option,
    resolve_with,
    trust_options,
)
from appshelf.client.client import Download, RegistryClient
from appshelf.client.lock import LockFile, check_lock, read_lock
from appshelf.client.trusted import TrustedManifest
from appshelf.errors import ClientUsageError
from appshelf.formats.documents import Manifest


def _warn_standing(manifest: Manifest) -> None:
    """A locked release keeps installing when yanked or deprecated; say so."""
    what = f"{manifest.app} {manifest.version}"
    if manifest.yanked:
        click.secho(
            f"Warning: {what} is yanked ({manifest.yanked}); fetching it because the lock pins it",
            err=True,
            fg="yellow",
        )
    if manifest.deprecated:
        instead = f"; use {manifest.replacement} instead" if manifest.replacement else ""
        click.secho(
            f"Warning: {what} is deprecated ({manifest.deprecated}){instead}",
            err=True,
            fg="yellow",
        )


@click.command("fetch")
@click.argument("requirements", nargs=-1, metavar="[APP@RANGE...]")
@registry_option(required=False)
@trust_options
@prerelease_option
@click.option(
    "-d",
    "--dest",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Folder to download into.",
)
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Install exactly what this lock file records.",
)
@json_option
def command(
    requirements: tuple[str, ...],
    registry: str | None,
    trust: Trust,
    prerelease: bool,
    dest: Path,
    lock_file: Path | None,
    as_json: bool,
) -> None:
    """Download the artifacts of the resolved plan (or of --lock) into DEST, verified."""
    if lock_file is not None and requirements:
        raise ClientUsageError("give either requirements or --lock, not both")
    if lock_file is None and not requirements:
        raise ClientUsageError("nothing to fetch: give app@range requirements or --lock FILE")
    lock = read_lock(lock_file) if lock_file is not None else None
    location = registry or (lock.registry if lock is not None else None)
    if location is None:
        raise ClientUsageError("no registry: pass --registry URL|FOLDER")
    with make_client(location, trust) as client:
        if lock is not None:
            manifests = _locked(client, lock)
        else:
            manifests = _resolved(client, requirements, prerelease)
        downloads = [client.download_manifest(trusted, dest) for trusted in manifests]
    _show(downloads, dest, as_json)


def _locked(client: RegistryClient, lock: LockFile) -> list[TrustedManifest]:
    manifests = check_lock(client, lock)
    for trusted in manifests:
        _warn_standing(trusted.manifest)
    return manifests


def _resolved(
    client: RegistryClient, requirements: tuple[str, ...], prerelease: bool
) -> list[TrustedManifest]:
    plan = resolve_with(client, requirements, prerelease)
    for item in plan.installs:
        if item.entry.yanked:
            click.secho(
                f"Warning: {item.app} {item.version} is yanked ({item.entry.yanked}); "
                "fetching it because it is pinned exactly",
                err=True,
                fg="yellow",
            )
    return [client.manifest(i.app, i.version) for i in plan.installs]


def _show(downloads: list[Download], dest: Path, as_json: bool) -> None:
    if as_json:
        rows = [
            {
                "app": d.app,
                "version": d.version,
                "path": str(d.path),
                "sha256": d.sha256,
                "size": d.size,
                "reused": d.reused,
            }
            for d in downloads
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for d in downloads:
        state = "already present, verified" if d.reused else "downloaded, verified"
        click.echo(f"  {d.app} {d.version} -> {d.path} ({d.size:,} bytes, {state})")
    click.echo(f"Fetched {len(downloads)} artifact(s) into {dest}")
