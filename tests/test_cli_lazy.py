"""The CLI loads each command's module only when it runs (appshelf/cli/__init__.py)."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from appshelf.cli import _COMMANDS, main


def test_every_listed_command_loads_under_its_name() -> None:
    for name in _COMMANDS:
        command = main.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name
    assert main.get_command(None, "no-such-command") is None  # type: ignore[arg-type]


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line}
    assert listed == set(_COMMANDS)


def test_build_does_not_import_boto3_or_tuf() -> None:
    """A build without --deploy or [tuf] needs neither (each costs ~0.2 s a run)."""
    code = (
        "import sys; from appshelf.cli import main; main.get_command(None, 'build'); "
        "print(sorted(m for m in ('boto3', 'botocore', 'tuf') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_build_help_does_not_import_the_builder() -> None:
    """`appshelf build --help` answers without the builder, the site or the source models
    (importing them took 0.5 s)."""
    code = (
        "import sys; from appshelf.cli import main; main.get_command(None, 'build'); "
        "print(sorted(m for m in ('appshelf.builder', 'appshelf.site', 'appshelf.source.models',"
        " 'jinja2', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
