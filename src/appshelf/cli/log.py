"""`appshelf log APP`: an app's history, read from the registry's verified release log."""

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
from appshelf.client.log import app_history, read_log
from appshelf.errors import UnknownAppError


@click.command("log")
@click.argument("app")
@registry_option()
@trust_options
@json_option
def command(app: str, registry: str, trust: Trust, as_json: bool) -> None:
    """Show APP's history from the release log: releases, yanks, deprecations, takedowns."""
    with make_client(registry, trust) as client:
        verified = read_log(client.transport, client.snapshot, client.keys)
        registry_url = client.snapshot.registry
    rows = app_history(verified.state, app)
    if not rows:
        raise UnknownAppError(f"no app {app!r} in the release log of {registry_url}")
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(row) for row in rows], indent=2))
        return
    click.echo(f"{app}: {len(rows)} log entries (of {verified.state.size}) from {registry_url}")
    for row in rows:
        detail = f"  {row.reason}" if row.reason else ""
        if row.replacement:
            detail += f" (use {row.replacement})"
        click.echo(f"  #{row.index:<5} {row.logged}  {row.action:<12} {row.version}{detail}")
