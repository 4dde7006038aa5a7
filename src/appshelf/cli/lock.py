"""`appshelf lock`: resolve requirements and record exactly what to install."""

from __future__ import annotations

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
from appshelf.client.lock import lock_plan, write_lock


@click.command("lock")
@click.argument("requirements", nargs=-1, required=True, metavar="APP@RANGE...")
@registry_option()
@trust_options
@prerelease_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("appshelf.lock"),
    show_default=True,
    help="The lock file to write (atomically).",
)
@json_option
def command(
    requirements: tuple[str, ...],
    registry: str,
    trust: Trust,
    prerelease: bool,
    output: Path,
    as_json: bool,
) -> None:
    """Write a lock file: per app its version, artifact URL, sha256, size, manifest digest
    and signing key id."""
    with make_client(registry, trust) as client:
        lock = lock_plan(client, resolve_with(client, requirements, prerelease))
    write_lock(lock, output)
    if as_json:
        click.echo(lock.model_dump_json(indent=2))
        return
    click.echo(f"Locked {len(lock.apps)} app(s) from {lock.registry} into {output}:")
    for app in lock.apps:
        click.echo(f"  {app.app} {app.version}  sha256:{app.artifact.sha256[:16]}...")
