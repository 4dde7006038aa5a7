"""`appshelf yank | unyank | deprecate | undeprecate | takedown`: record a published
version's standing in the source (apps/<app>/lifecycle.toml); the next build logs it."""

from __future__ import annotations

from pathlib import Path

import click

from appshelf.source.lifecycle import record_standing

_HELP = {
    "yank": "Stop recommending VERSION; existing pins and locks keep working.",
    "unyank": "Undo a yank.",
    "deprecate": "Mark VERSION deprecated (optionally naming a --replacement).",
    "undeprecate": "Undo a deprecation.",
    "takedown": "Remove VERSION's artifact from the registry for good; its record stays.",
}


def _make(action: str) -> click.Command:
    @click.command(action, help=_HELP[action])
    @click.argument("app")
    @click.argument("version")
    @click.option("--reason", help="Why (shown to users and kept in the release log).")
    @click.option("--source", type=click.Path(path_type=Path), default=Path("."), show_default=True)
    def command(app: str, version: str, reason: str | None, source: Path, **extra: str) -> None:
        path = record_standing(source, app, version, action, reason, extra.get("replacement"))
        click.echo(f"Recorded: {action} {app} {version} in {path}")
        click.echo("Commit it; the next `appshelf build` adds it to the release log.")

    if action == "deprecate":
        command = click.option(
            "--replacement", metavar="VERSION", help="The version to use instead."
        )(command)
    return command


commands = [_make(action) for action in ("yank", "unyank", "deprecate", "undeprecate", "takedown")]
yank, unyank, deprecate, undeprecate, takedown = commands
