"""The `appshelf` command line: a thin layer that parses options and calls the library.

User errors (`AppshelfError`) become one `Error: ...` message and exit status 1; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from appshelf import __version__
from appshelf.errors import AppshelfError


class AppshelfGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AppshelfError as exc:
            click.secho(f"Error: {exc}", err=True, fg="red")
            sys.exit(1)


@click.group(cls=AppshelfGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="appshelf")
def main() -> None:
    """Build, sign, publish and consume static app registries."""


def _register() -> None:
    # One module per command, as MkDocs does; each defines a click command named `command`.
    from appshelf.cli import (
        build,
        deploy,
        fetch,
        flows_import,
        init,
        keygen,
        lifecycle,
        lock,
        log,
        registry,
        resolve,
        rotate,
        search,
        serve,
        show,
        verify,
    )

    commands = (build, keygen, serve, search, resolve, fetch, lock, verify, deploy, init)
    for module in (*commands, registry, show, log):
        main.add_command(module.command)
    for command in (*lifecycle.commands, rotate.command):
        main.add_command(command)
    main.add_command(show.versions_command)
    main.add_command(flows_import.import_command)
    main.add_command(flows_import.sync_command)


_register()
