"""`appshelf search`: find apps in a registry's verified index."""

from __future__ import annotations

import json

import click

from appshelf.cli.client_options import (
    Trust,
    json_option,
    make_client,
    registry_option,
    trust_options,
)
from appshelf.client.search import search


@click.command("search")
@click.argument("query", nargs=-1)
@registry_option()
@trust_options
@click.option("--provides", metavar="INTERFACE", help="Only apps providing this interface.")
@click.option("--requires", metavar="INTERFACE", help="Only apps requiring this interface.")
@click.option("--tag", help="Only apps with this tag.")
@json_option
def command(
    query: tuple[str, ...],
    registry: str,
    trust: Trust,
    provides: str | None,
    requires: str | None,
    tag: str | None,
    as_json: bool,
) -> None:
    """Search apps by key, name, description, tags and interfaces (all words must match)."""
    with make_client(registry, trust) as client:
        hits = search(
            client.index(), " ".join(query), provides=provides, requires=requires, tag=tag
        )
    if as_json:
        click.echo(json.dumps([hit.entry.model_dump() for hit in hits], indent=2))
        return
    if not hits:
        click.echo("No apps match.")
        return
    for hit in hits:
        entry = hit.entry
        click.echo(f"{entry.key} {entry.latest or '-'}  {entry.name}")
        click.echo(f"    {entry.description}")
        extras = []
        if entry.tags:
            extras.append("tags: " + ", ".join(entry.tags))
        if entry.provides:
            extras.append("provides: " + ", ".join(entry.provides))
        if entry.requires:
            extras.append("requires: " + ", ".join(entry.requires))
        if extras:
            click.echo("    " + "; ".join(extras))
