"""The source read holds little beyond the apps it returns (issue 12, peak memory).

Two things a cold read used to keep to its end: every listing it had taken (a `Path`
and a tuple for every file of every app) and every cache row it would write. Both are
now let go as the read goes on; these tests check that, and that nothing else changes.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from appshelf import filestat
from appshelf.builder import cache as cache_module
from appshelf.builder.cache import CACHE_DIR
from appshelf.source import tree as tree_module
from conftest import REPO_ROOT, build

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import generate


@pytest.fixture(autouse=True)
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files here are seconds old; treat them as settled, as they would be a bit later."""
    monkeypatch.setattr(filestat, "RACY_NS", -(10**18))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    generate.generate_small(root, 6, 3, seed=5)
    return root


def test_app_scope_forgets_only_what_the_app_added(tmp_path: Path) -> None:
    reader = tree_module._Reader(tmp_path)
    before = tmp_path / "before"
    reader.kinds[before] = (False, True, False)
    reader.listed[before] = None
    reader.dirs_inside[before] = None
    with reader.app_scope():
        reader.kinds[before] = (False, False, True)  # known before: stays, as updated
        for name in ("a", "b", "c"):
            reader.kinds[tmp_path / name] = (False, False, True)
            reader.listed[tmp_path / name] = None
            reader.dirs_inside[tmp_path / name] = None
    assert reader.kinds == {before: (False, False, True)}
    assert list(reader.listed) == [before] and list(reader.dirs_inside) == [before]


def test_no_listing_outlives_its_app(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When each app is read, the listings known are those of apps/ and of that app only."""
    seen: list[set[str]] = []
    real = tree_module._read_app

    def read_app(reader: tree_module._Reader, folder: Path, entries: object) -> object:
        app = real(reader, folder, entries)  # type: ignore[arg-type]
        apps = source / "apps"
        seen.append({p.relative_to(apps).parts[0] for p in reader.kinds if p.parent != apps})
        return app

    monkeypatch.setattr(tree_module, "_read_app", read_app)
    tree = tree_module.load_source_tree(source)
    assert seen == [{app.key} for app in tree.apps]


def _source_rows(out: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(out.parent / CACHE_DIR / f"{out.name}.sqlite")
    try:
        return sorted(db.execute("SELECT * FROM sources").fetchall())
    finally:
        db.close()


def test_cache_rows_written_in_batches_are_those_written_at_once(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written a few at a time during the read are the same rows, and a build's
    output is the same, as when they were all written at the end; the next build
    recalls them (it reads no config file again)."""
    build(source, tmp_path / "at-once" / "out")
    monkeypatch.setattr(cache_module, "_PENDING_ROWS", 3)
    written: list[int] = []
    real = cache_module.BuildCache._write_pending

    def write_pending(self: cache_module.BuildCache) -> None:
        written.append(len(self._pending_sources))
        real(self)

    monkeypatch.setattr(cache_module.BuildCache, "_write_pending", write_pending)
    build(source, tmp_path / "batched" / "out")
    assert written.count(3) > 5  # written as the read went on, not once at its end
    rows = _source_rows(tmp_path / "batched" / "out")
    assert rows == _source_rows(tmp_path / "at-once" / "out") and len(rows) > 20

    parsed: list[Path] = []
    real_parse = tree_module._Reader._parse_model

    def parse(self: tree_module._Reader, path: Path, raw: bytes, model: type) -> object:
        parsed.append(path)
        return real_parse(self, path, raw, model)

    monkeypatch.setattr(tree_module._Reader, "_parse_model", parse)
    (source / "apps" / sorted(p.name for p in (source / "apps").iterdir())[0] / "app.toml").touch()
    build(source, tmp_path / "batched" / "out")
    # Every file but the one touched is recalled (registry.toml is also read once
    # without the cache, to see which mirrors are on: builder/reuse.py).
    assert [p.name for p in parsed if p.name != "registry.toml"] == ["app.toml"]
