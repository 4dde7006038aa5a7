"""`appshelf resolve`: print the install plan for one or more `app@range` requirements."""

from __future__ import annotations

import json

import click

from appshelf.cli.client_options import (
    Trust,
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
    trust: Trust,
    prerelease: bool,
    as_json: bool,
) -> None:
    """Resolve requirements (e.g. slack-notify@^1 jira-sync) to one version per app."""
    with make_client(registry, trust) as client:
        plan = resolve_with(client, requirements, prerelease)
    if as_json:
        click.echo(json.dumps(plan_json(plan), indent=2))
    else:
        show_plan(plan)
