"""`appshelf resolve`: print the install plan for one or more `app@range` requirements."""

from __future__ import annotations

import json
from pathlib import Path

import click

from appshelf.cli.client_options import (
    json_option,
    make_client,
    plan_json,
    prerelease_option,
    registry_option,
    resolve_with,
    show_plan,
    trust_options,
)


@click.command("resolve")
@click.argument("requirements", nargs=-1, required=True, metavar="APP@RANGE...")
@registry_option()
@trust_options
@prerelease_option
@json_option
def command(
    requirements: tuple[str, ...],
    registry: str,
    keys: tuple[str, ...],
    keys_file: Path | None,
    allow_dev_key: bool,
    state_dir: Path | None,
    prerelease: bool,
    as_json: bool,
) -> None:
    """Resolve requirements (e.g. slack-notify@^1 jira-sync) to one version per app."""
    with make_client(registry, keys, keys_file, allow_dev_key, state_dir) as client:
        plan = resolve_with(client, requirements, prerelease)
    if as_json:
        click.echo(json.dumps(plan_json(plan), indent=2))
    else:
        show_plan(plan)
