"""Golden signed files: rebuilt from a fixed key and clock, compared byte for byte.

A difference means the wire format changed: if intended, run tests/golden/regenerate.py,
review the diff, and update docs/spec.md's worked example to match.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"


def _regenerate_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("golden_regenerate", GOLDEN / "regenerate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_golden_files_are_reproduced_byte_for_byte(tmp_path: Path) -> None:
    _regenerate_module().build_golden(tmp_path / "out")
    assert _tree(tmp_path / "out") == _tree(GOLDEN / "expected")


def test_spec_worked_example_quotes_the_golden_files() -> None:
    spec = (GOLDEN.parent.parent / "docs" / "spec.md").read_text()
    manifest = (GOLDEN / "expected/apps/hello/1.0.0/manifest.json").read_text()
    assert manifest in spec
