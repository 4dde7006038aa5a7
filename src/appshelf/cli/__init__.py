"""The `appshelf` command line: a thin layer that parses options and calls the library.

User errors (`AppshelfError`) become one `Error: ...` message and exit status 1; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import sys
import threading
from typing import Any

import click

from appshelf import __version__
from appshelf.errors import AppshelfError

# Every command, by name: (module under appshelf.cli, attribute). A command's module is
# imported only when that command runs (or --help lists them all), so `appshelf build`
# does not import boto3, the client or the mirrors (one module per command, as MkDocs).
_COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("build", "command"),
    "change-owners": ("signrelease", "owners_command"),
    "deploy": ("deploy", "command"),
    "deprecate": ("lifecycle", "deprecate"),
    "fetch": ("fetch", "command"),
    "import": ("flows_import", "import_command"),
    "init": ("init", "command"),
    "keygen": ("keygen", "command"),
    "lock": ("lock", "command"),
    "log": ("log", "command"),
    "publish": ("publish", "command"),
    "registry": ("registry", "command"),
    "resolve": ("resolve", "command"),
    "rotate-key": ("rotate", "command"),
    "search": ("search", "command"),
    "serve": ("serve", "command"),
    "show": ("show", "command"),
    "sign-release": ("signrelease", "command"),
    "sync": ("flows_import", "sync_command"),
    "takedown": ("lifecycle", "takedown"),
    "undeprecate": ("lifecycle", "undeprecate"),
    "unyank": ("lifecycle", "unyank"),
    "verify": ("verify", "command"),
    "versions": ("show", "versions_command"),
    "yank": ("lifecycle", "yank"),
}


class AppshelfGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = self.commands.get(cmd_name)
        if found is None and cmd_name in _COMMANDS:
            module, attribute = _COMMANDS[cmd_name]
            found = getattr(importlib.import_module(f"appshelf.cli.{module}"), attribute)
            assert isinstance(found, click.Command) and found.name == cmd_name, cmd_name
            self.add_command(found)
        return found

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


def run() -> None:
    """The `appshelf` script and `python -m appshelf`: `main`, then a quick exit.

    A build leaves hundreds of thousands of objects in reference cycles, and collecting
    them at interpreter shutdown took 0.3 s of a 1.9 s no-op build of 20,000 versions.
    So, as mypy does, the process ends with `os._exit` once `main` has: the exit
    handlers run first (logging, multiprocessing, temporary folders) and both streams
    are flushed, so only the freeing of memory the OS takes back anyway is skipped.
    While a non-daemon thread is alive, the normal exit (which joins it) is kept. Tests
    call `main` itself.
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _exit_status(exc.code)
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    if any(not t.daemon and t.is_alive() for t in others):
        sys.exit(code)  # the interpreter's exit joins them
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`... | head`)
            stream.flush()
    os._exit(code)


def _exit_status(code: object) -> int:
    """What the interpreter would exit with for `SystemExit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
