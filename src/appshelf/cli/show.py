"""`appshelf show APP[@VERSION]` and `appshelf versions APP`: one app from the verified
app.json (and its signed manifest), like `helm show chart` and `pip index versions`."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from appshelf.cli.client_options import (
    Trust,
    json_option,
    make_client,
    registry_option,
    trust_options,
)
from appshelf.client.publisher import PublisherVerified
from appshelf.errors import UnknownVersionError
from appshelf.formats.documents import AppDetail, VersionEntry


def _version_row(entry: VersionEntry) -> dict[str, Any]:
    return {
        "version": entry.version,
        "published": entry.published,
        "yanked": entry.yanked,
        "artifact": entry.artifact.model_dump(),
        "provides": entry.provides,
        "requires": entry.requires,
        "dependencies": entry.dependencies,
    }


def _newest(app: AppDetail) -> VersionEntry:
    usable = [v for v in app.versions if not v.yanked] or app.versions
    if not usable:
        raise UnknownVersionError(f"{app.key} has no published versions")
    return usable[0]  # app.json lists the newest first


@click.command("show")
@click.argument("app_spec", metavar="APP[@VERSION]")
@registry_option()
@trust_options
@json_option
def command(app_spec: str, registry: str, trust: Trust, as_json: bool) -> None:
    """Show one app and one version (default: the newest not yanked), verified."""
    key, _, version = app_spec.partition("@")
    with make_client(registry, trust) as client:
        app = client.app(key)
        entry = client.entry(key, version) if version else _newest(app)
        signed = client.manifest(key, entry.version)  # checks the signature too
    if as_json:
        row = {"app": key, "metadata": app.metadata.model_dump(), **_version_row(entry)}
        publisher = signed.publisher
        who = dataclasses.asdict(publisher) if isinstance(publisher, PublisherVerified) else None
        click.echo(json.dumps({**row, "signed_by": signed.keyid, "publisher": who}, indent=2))
        return
    meta = app.metadata
    click.echo(f"{meta.name} ({key}) {entry.version}")
    click.echo(f"  {meta.description}")
    for label, value in (
        ("published", entry.published),
        ("yanked", entry.yanked),
        ("artifact", entry.artifact.url),
        ("sha256", entry.artifact.sha256),
        ("size", f"{entry.artifact.size:,} bytes"),
        ("provides", ", ".join(entry.provides)),
        ("requires", ", ".join(entry.requires)),
        ("depends on", ", ".join(f"{k}@{v}" for k, v in sorted(entry.dependencies.items()))),
        ("publisher", _publisher_line(signed.publisher)),
        ("signed by", f"key id {signed.keyid[:16]}..."),
        ("versions", ", ".join(v.version for v in app.versions)),
    ):
        if value:
            click.echo(f"  {label:<11} {value}")
    click.echo(f"Fetch it: appshelf fetch -r {registry} {key}@{entry.version}")


def _publisher_line(publisher: object) -> str | None:
    if not isinstance(publisher, PublisherVerified):
        return None
    return (
        f"published by {publisher.name} ({publisher.id}, key id {publisher.keyid[:16]}...), "
        "countersigned by the registry"
    )


@click.command("versions")
@click.argument("key", metavar="APP")
@registry_option()
@trust_options
@json_option
def versions_command(key: str, registry: str, trust: Trust, as_json: bool) -> None:
    """List every published version of APP, newest first (yanked ones marked)."""
    with make_client(registry, trust) as client:
        app = client.app(key)
    if as_json:
        click.echo(json.dumps([_version_row(v) for v in app.versions], indent=2))
        return
    for entry in app.versions:
        yanked = f"  [YANKED: {entry.yanked}]" if entry.yanked else ""
        click.echo(f"{entry.version:<16} {entry.published}{yanked}")
