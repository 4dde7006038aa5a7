"""Entry bundles are lazy files (builder/logplan.py): a full tile never changes, so a
rebuild neither encodes nor holds the bundles of the log it only extends; the output is
the same bytes as a cold build's, with or without the cache."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from appshelf import filestat
from appshelf.builder import logplan
from appshelf.formats.log import TILE_WIDTH, encode_bundle
from conftest import FIXED_NOW, REPO_ROOT, build
from generations import current_files

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import generate


@pytest.fixture(autouse=True)
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files here are seconds old; treat them as settled, as they would be a bit later."""
    monkeypatch.setattr(filestat, "RACY_NS", -(10**18))


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The width of every entry bundle encoded."""
    widths: list[int] = []

    def spy(entries: Sequence[bytes]) -> bytes:
        widths.append(len(entries))
        return encode_bundle(entries)

    monkeypatch.setattr(logplan, "encode_bundle", spy)
    return widths


def files(root: Path) -> dict[str, bytes]:
    return current_files(root, frozenset({"snapshot.json"}))


def test_full_entry_tiles_are_encoded_once(tmp_path: Path, rendered: list[int]) -> None:
    source, out = tmp_path / "source", tmp_path / "out"
    generate.generate_small(source, 30, 10, seed=5)  # 300 releases: one full tile and more
    build(source, out)
    assert TILE_WIDTH in rendered and len(rendered) == 2  # the full tile, the partial one

    rendered.clear()
    build(source, out, now=FIXED_NOW + timedelta(hours=1))  # a no-op
    assert rendered == []

    generate.add_version(source, "app-00007", "50.0.0")
    rendered.clear()
    later = FIXED_NOW + timedelta(hours=2)
    build(source, out, now=later)
    assert TILE_WIDTH not in rendered and len(rendered) == 1  # the new partial tile only

    for cache in (True, False):
        cold = tmp_path / f"cold-{cache}"
        build(source, cold, now=later, previous=out, cache=cache)
        assert files(cold) == files(out)


def test_an_entry_bundle_changed_in_the_output_is_written_again(
    tmp_path: Path, rendered: list[int]
) -> None:
    """The cache vouches for a file only while it is as written: a bundle edited on disk
    is encoded and written again."""
    source, out = tmp_path / "source", tmp_path / "out"
    generate.generate_small(source, 30, 10, seed=5)
    build(source, out)
    full = out / "log/tile/entries/000"
    good = full.read_bytes()
    full.write_bytes(good[:-1] + b"?")
    rendered.clear()
    build(source, out, now=FIXED_NOW + timedelta(hours=1))
    assert rendered == [TILE_WIDTH]
    assert full.read_bytes() == good
