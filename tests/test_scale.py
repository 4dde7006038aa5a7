"""The benchmark's scenarios at 1,000 versions, as a correctness check (no timings).

Builds a tree from benchmarks/generate.py cold, rebuilds it (nothing may be written),
adds one version (only the files it touches may be written), and checks that the build
cache can only ever cost time: corrupt, stale, lost or lying caches, files changed
behind a preserved mtime, and a commit killed half way.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import appshelf.builder.writer as writer
from appshelf import filestat
from appshelf.builder.cache import CACHE_DIR, BuildCache
from appshelf.errors import OutputError, SourceTreeError
from appshelf.filehash import HashStats, hash_files
from appshelf.formats.consistent import plain_path
from conftest import FIXED_NOW, REPO_ROOT, build
from generations import current_files

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import generate

APPS, VERSIONS = 100, 10


def _state(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """inode, mtime and bytes of every file: a rewritten file changes at least one."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            state[path.relative_to(root).as_posix()] = (
                st.st_ino,
                st.st_mtime_ns,
                path.read_bytes(),
            )
    return state


def _changed(
    before: dict[str, tuple[int, int, bytes]], after: dict[str, tuple[int, int, bytes]]
) -> set[str]:
    return {p for p in after if before.get(p) != after[p]} | (set(before) - set(after))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scale") / "source"
    assert generate.generate_small(root, APPS, VERSIONS, seed=7) == APPS * VERSIONS
    return root


@pytest.fixture
def source(tree: Path, tmp_path: Path) -> Path:
    """A private copy (hard links would share inodes with the module's tree)."""
    import shutil

    copy = tmp_path / "source"
    shutil.copytree(tree, copy)
    return copy


@pytest.fixture(autouse=True)
def remember_new_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files here are seconds old; let the cache record them as if they were settled
    (and let unchanged app folders be reused, as they would be minutes later)."""
    monkeypatch.setattr(filestat, "RACY_NS", -(10**18))


def test_cold_noop_and_one_new_version(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cold = build(source, out)
    assert cold.versions == APPS * VERSIONS
    assert cold.files_written == cold.files_total and cold.artifacts_hashed == APPS * VERSIONS
    assert (tmp_path / CACHE_DIR / "out.sqlite").is_file()

    before = _state(out)
    noop = build(source, out, now=FIXED_NOW + timedelta(hours=1))
    assert (noop.changed, noop.files_written, noop.artifacts_hashed) == (False, 0, 0)
    assert noop.apps_reused == APPS
    assert _state(out) == before

    generate.add_version(source, "app-00050", "99.0.0")
    added = build(source, out, now=FIXED_NOW + timedelta(hours=2))
    folder = "apps/app-00050/99.0.0"
    changed = _changed(before, _state(out))
    copies = {p for p in changed if plain_path(p) is not None}  # consistent snapshots
    logged = {p for p in changed - copies if p.startswith("log/")}
    # The release log: its checkpoint, and the last bundle and hash tiles only (a partial
    # tile replaced by a wider or full one, one per level).
    written = {p for p in logged if (out / p).exists()}
    assert "log/checkpoint" in written and len(written) <= 4 and len(logged) <= 8, logged
    assert {plain_path(p)[0] for p in copies} == {  # type: ignore[index]
        f"{folder}/manifest.json",
        "apps/app-00050/app.json",
        "apps/app-00050/versions.json",
        "bins/0.json",  # the app's bin (docs/spec.md 4.8)
        "index.json",
        "log/checkpoint",
    }
    assert changed - logged - copies == {
        f"{folder}/app-00050-99.0.0.tar.gz",
        f"{folder}/manifest.json",
        "apps/app-00050/app.json",
        "apps/app-00050/versions.json",
        "bins/0.json",
        "index.json",
        "snapshot.json",
    }
    assert (added.files_written, added.artifacts_hashed, added.apps_reused) == (
        7 + len(written) + len(copies),  # 6 files + the app's bin
        1,
        APPS - 1,
    )
    assert added.snapshot_version == 2

    # The incremental output is byte-identical to a cold build of the same source.
    fresh = tmp_path / "fresh"
    build(source, fresh, previous=out, now=FIXED_NOW + timedelta(hours=2))
    current = set(current_files(out))  # not the previous snapshot's kept copies
    assert {p: s[2] for p, s in _state(fresh).items() if p != "snapshot.json"} == {
        p: s[2] for p, s in _state(out).items() if p != "snapshot.json" and p in current
    }


def test_corrupt_cache_only_costs_time(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(source, out)
    before = _state(out)
    db = tmp_path / CACHE_DIR / "out.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"SQLite format 3\x00" + os.urandom(4096) * 4)
    report = build(source, out)
    assert report.files_written == 0 and report.artifacts_hashed == APPS * VERSIONS
    assert any("build cache" in w for w in report.warnings)
    assert _state(out) == before
    assert build(source, out).artifacts_hashed == 0  # rebuilt and used again


def test_lost_cache_only_costs_time(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(source, out)
    before = _state(out)
    for path in (tmp_path / CACHE_DIR).iterdir():
        path.unlink()
    report = build(source, out)
    assert (report.files_written, report.artifacts_hashed) == (0, APPS * VERSIONS)
    assert _state(out) == before


def test_lying_cache_row_is_not_believed(source: Path, tmp_path: Path) -> None:
    """A row whose digest was damaged fails its CRC: the file is hashed again."""
    out = tmp_path / "out"
    build(source, out)
    db = sqlite3.connect(tmp_path / CACHE_DIR / "out.sqlite")
    db.execute("UPDATE artifacts SET sha256 = ?", ("0" * 64,))
    db.execute("UPDATE outputs SET sha256 = ?", ("0" * 64,))
    db.execute("UPDATE apps SET crc = 0")  # so no app is reused (test_memo.py covers that)
    db.commit()
    db.close()
    report = build(source, out)
    assert (report.files_written, report.artifacts_hashed) == (0, APPS * VERSIONS)


def test_artifact_changed_behind_a_preserved_mtime_is_caught(source: Path, tmp_path: Path) -> None:
    """Same size, same mtime (restored with os.utime): ctime still moves, so the file is
    hashed again and the immutability check refuses the new bytes."""
    out = tmp_path / "out"
    build(source, out)
    artifact = next((source / "apps/app-00003").glob("*/*.tar.gz"))
    st = artifact.stat()
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF
    artifact.write_bytes(bytes(data))
    os.utime(artifact, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (artifact.stat().st_size, artifact.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    with pytest.raises(SourceTreeError, match=r"was published \(release log entry"):
        build(source, out)


def test_file_changed_behind_a_preserved_mtime_gets_its_true_digest(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "cache.sqlite")
    artifact = tmp_path / "a.bin"
    artifact.write_bytes(b"a" * 1000)
    assert (
        hash_files([artifact], cache=cache)[artifact].sha256
        == hashlib.sha256(b"a" * 1000).hexdigest()
    )
    st = artifact.stat()
    artifact.write_bytes(b"b" * 1000)
    os.utime(artifact, ns=(st.st_atime_ns, st.st_mtime_ns))
    stats = HashStats()
    digest = hash_files([artifact], cache=cache, stats=stats)[artifact]
    assert digest.sha256 == hashlib.sha256(b"b" * 1000).hexdigest() and stats.files_read == 1
    stats = HashStats()
    hash_files([artifact], cache=cache, stats=stats)
    assert stats.files_read == 0  # now remembered under its new stat key
    cache.close()


def test_output_file_edited_by_hand_is_repaired(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(source, out)
    target = next((out / "apps/app-00020").glob("*/manifest.json"))
    good = target.read_bytes()
    target.write_bytes(good.replace(b"appshelf.manifest", b"APPSHELF.MANIFEST"))
    assert len(target.read_bytes()) == len(good)
    report = build(source, out)
    assert report.files_written == 1 and target.read_bytes() == good


def test_commit_killed_half_way_is_rolled_forward(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    build(source, out)
    generate.add_version(source, "app-00070", "99.0.0")
    expected = tmp_path / "expected"
    build(source, expected, previous=out, now=FIXED_NOW + timedelta(hours=1))

    real_replace = os.replace
    calls = {"n": 0}

    def dying_replace(src: str | Path, dst: str | Path) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(writer.os, "replace", dying_replace)
    with pytest.raises(OutputError, match="journal"):
        build(source, out, now=FIXED_NOW + timedelta(hours=1))
    monkeypatch.setattr(writer.os, "replace", real_replace)
    journals = list(tmp_path.glob(".appshelf-journal-*"))
    assert len(journals) == 1
    # Half committed: the snapshot (committed last) still pins the old state.
    assert json.loads((out / "snapshot.json").read_bytes())["signed"]["version"] == 1

    report = build(source, out, now=FIXED_NOW + timedelta(hours=1))
    assert report.files_written == 0  # the roll-forward finished the job
    assert not list(tmp_path.glob(".appshelf-journal-*"))
    assert not list(tmp_path.glob(".appshelf-tmp-*"))
    current = set(current_files(out))  # not the previous snapshot's kept copies
    assert {p: s[2] for p, s in _state(out).items() if p in current} == {
        p: s[2] for p, s in _state(expected).items()
    }


def test_rows_of_deleted_files_are_pruned(source: Path, tmp_path: Path) -> None:
    import shutil

    from appshelf.source.lifecycle import record_standing

    out = tmp_path / "out"
    build(source, out)
    last = f"app-{APPS - 1:05d}"  # the last app: nobody depends on it
    for version in [p.name for p in (source / "apps" / last).iterdir() if p.is_dir()]:
        record_standing(source, last, version, "takedown", "gone")
    build(source, out)
    shutil.rmtree(source / "apps" / last)  # taken down: its folder may go now
    build(source, out)
    db = sqlite3.connect(tmp_path / CACHE_DIR / "out.sqlite")
    for table in ("artifacts", "sources"):
        names = [row[0] for row in db.execute(f"SELECT name FROM {table}")]
        assert names and not [n for n in names if f"app-{APPS - 1:05d}" in n], table
    db.close()


def _one_app_changed(source: Path) -> None:
    """A new version of app-00042."""
    generate.add_version(source, "app-00042", "99.0.0")


def test_a_build_of_one_changed_app_loads_only_its_rows(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One changed app of 100: the cache hands over that app's source and artifact rows,
    not every app's (a full load cost 0.9 s each at 100,000 versions), and the rows of
    what was deleted from the app are still pruned."""
    import shutil

    from appshelf.source.lifecycle import record_standing

    app = source / "apps" / "app-00042"
    gone = sorted(p.name for p in app.iterdir() if p.is_dir())[0]
    out = tmp_path / "out"
    build(source, out)
    record_standing(source, "app-00042", gone, "takedown", "gone")
    build(source, out, now=FIXED_NOW + timedelta(minutes=30))
    shutil.rmtree(app / gone)  # taken down: its folder may go now
    _one_app_changed(source)
    db = sqlite3.connect(tmp_path / CACHE_DIR / "out.sqlite")
    rows = {
        t: f"SELECT name FROM {t} WHERE name LIKE '%/app-00042/{gone}/%'"
        for t in ("sources", "artifacts")
    }
    assert all(list(db.execute(query)) for query in rows.values())
    others = "SELECT count(*) FROM {} WHERE name NOT LIKE '%/app-00042/%'"
    kept = {t: db.execute(others.format(t)).fetchone()[0] for t in ("sources", "artifacts")}
    assert kept["artifacts"] == (APPS - 1) * VERSIONS

    loads: list[tuple[str | None, str | None]] = []
    artifact_rows: list[int] = []
    real_sources, real_load = BuildCache._load_sources, BuildCache.load

    def spy_sources(
        self: BuildCache, name: str | None = None, folder: str | None = None
    ) -> dict[str, object]:
        loads.append((name, folder))
        return real_sources(self, name, folder)  # type: ignore[return-value]

    def spy_load(self: BuildCache, table: str, *args: Any, **kwargs: Any) -> dict[str, object]:
        found = real_load(self, table, *args, **kwargs)
        if table == "artifacts":
            artifact_rows.append(len(found))
        return found  # type: ignore[return-value]

    monkeypatch.setattr(BuildCache, "_load_sources", spy_sources)
    monkeypatch.setattr(BuildCache, "load", spy_load)
    report = build(source, out, now=FIXED_NOW + timedelta(hours=1))
    assert report.apps_reused == APPS - 1 and report.artifacts_hashed == 1
    assert (None, None) not in loads  # never the whole sources table
    assert (None, "apps/app-00042/") in loads  # that app's folder, at once
    assert artifact_rows == [VERSIONS]  # that app's rows only (the new one has none yet)
    assert not any(list(db.execute(query)) for query in rows.values())  # pruned
    assert {t: db.execute(others.format(t)).fetchone()[0] for t in kept} == kept  # not those
    db.close()


def test_one_changed_app_gives_the_bytes_of_a_build_without_a_cache(
    source: Path, tmp_path: Path
) -> None:
    """The same history built twice: with the cache (one app's rows loaded), and with
    the cache deleted before the second build (everything read again)."""
    import shutil

    warm, cold = tmp_path / "warm", tmp_path / "cold"
    build(source, warm)
    shutil.copytree(warm, cold)
    _one_app_changed(source)
    build(source, warm, now=FIXED_NOW + timedelta(hours=1))
    shutil.rmtree(tmp_path / CACHE_DIR)
    build(source, cold, now=FIXED_NOW + timedelta(hours=1))
    assert {p: s[2] for p, s in _state(warm).items()} == {p: s[2] for p, s in _state(cold).items()}
