"""Regenerate tests/golden/expected from tests/golden/source with a fixed key and clock.

Run after an intended format change: `.venv/bin/python tests/golden/regenerate.py`, then
review the diff: every byte of a signed file is part of the contract in docs/spec.md.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
# RFC 8032 section 7.1 TEST 1 seed: public knowledge, so only ever a test key.
GOLDEN_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
GOLDEN_NOW = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)


def build_golden(output: Path) -> None:
    from appshelf.builder import BuildOptions, build_registry

    options = BuildOptions(now=GOLDEN_NOW, environ={"APPSHELF_SIGNING_KEY": GOLDEN_SEED})
    # Built from a copy outside this repository's git work tree: a build from a git work
    # tree also publishes log/state.json (docs/spec.md 9.7), which would tie the golden
    # files to this repository's commits.
    with tempfile.TemporaryDirectory(prefix="appshelf-golden-") as folder:
        source = Path(folder) / "source"
        shutil.copytree(HERE / "source", source)
        build_registry(source, output, options)
    shutil.rmtree(output / "schemas")  # generated from the models; not part of the golden set


if __name__ == "__main__":
    target = HERE / "expected"
    shutil.rmtree(target, ignore_errors=True)
    build_golden(target)
    print(f"regenerated {target}", file=sys.stderr)
