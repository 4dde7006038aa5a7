"""Downloads and lock files follow the umask, as curl, pip and `helm pull` do."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from conftest import build


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_fetch_and_lock_follow_the_umask(
    example_source: Path, tmp_path: Path, umask: None, mask: int, expected: int
) -> None:
    registry = tmp_path / "registry"
    build(example_source, registry, now=datetime.now(UTC))  # the CLI checks expiry now
    os.umask(mask)
    dest = tmp_path / "dl"
    common = ["-r", str(registry), "--allow-dev-key", "--state-dir", str(tmp_path / "s")]
    result = CliRunner().invoke(main, ["fetch", *common, "slack-notify@1.0.0", "-d", str(dest)])
    assert result.exit_code == 0, result.output
    lock = tmp_path / "app.lock"
    result = CliRunner().invoke(main, ["lock", *common, "slack-notify", "-o", str(lock)])
    assert result.exit_code == 0, result.output
    files = [*dest.iterdir(), lock]
    assert len(files) == 3
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    # The rollback state stays private to the user whatever the umask.
    (state,) = (tmp_path / "s").iterdir()
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
