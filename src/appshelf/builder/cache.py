"""The persistent build cache: what earlier builds learned, so the next one skips work.

It lives in `<output's parent>/.appshelf-cache/<output name>.sqlite`: beside the output
(never published with it, and one per output, since what it records is that output's
state), not in the source tree (which may be a read-only checkout feeding several
outputs). Deleting it is always safe.

Three tables keyed by a file's stat: (size, mtime_ns, inode, ctime_ns, device), one
keyed by app and one keyed by content (a git blob id).
- `artifacts`: source path -> SHA-256, so unchanged artifacts are never re-read.
- `outputs`: output relpath -> SHA-256 of what the writer put there, so a rebuild can
  tell an unchanged output file from a stat() instead of reading it back.
- `sources`: source config file -> its validated model as JSON (re-validated by
  pydantic on use, never unpickled), and source folder -> its listing, so an
  unchanged tree is read with stat() calls instead of open/read/parse and getdents.
- `apps`: app key -> what the last build planned for it (builder/memo.py), used only while
  the fingerprint of the app's folder (every entry's stat key, or its git tree id) and of
  everything else its files depend on is unchanged, and its output files are still what
  was written.
- `blobs`: git blob id -> SHA-256 and size of that content, so an artifact that git
  vouches for (source/gitstate.py) is not re-read, in this work tree or in a fresh clone.
  Keyed by content, not stat: a row is stored only when the bytes hashed were that blob
  (its id is computed from them while hashing: filehash.py) or when a stat-keyed row
  vouched for the file while git called it clean.

A cache may be lost, stale or corrupt; that must only cost time, never give a wrong
digest. So a row is used only when every stat field matches (ctime cannot be set from
user space: restoring an mtime with os.utime moves ctime), every row carries a CRC of
its fields (a damaged row is a miss), a file changed within the last seconds is not
recorded (timestamps are coarser than writes: git's "racy clean" problem), and any
SQLite error discards the database and carries on without it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import stat
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appshelf.errors import OutputError
from appshelf.filestat import StatKey, parallel_map, settled, stat_key

__all__ = ["BuildCache", "Record", "StatKey", "parallel_map", "settled", "stat_key"]

CACHE_DIR = ".appshelf-cache"
SCHEMA = 4  # 4: blobs
KEPT_TOKEN = "kept:"  # outputs rows of files kept for the previous snapshot, not planned
_FEW_SOURCES = 16  # source rows fetched one by one before whole app folders are
_FEW_FOLDERS = 64  # app folders whose rows are fetched one by one before the whole table

_COLUMNS = (
    "(name TEXT PRIMARY KEY, size INT, mtime INT, ino INT, ctime INT, dev INT,"
    " sha256 TEXT, crc INT)"
)
_CREATE = (
    f"CREATE TABLE artifacts {_COLUMNS} WITHOUT ROWID;"
    f"CREATE TABLE outputs {_COLUMNS} WITHOUT ROWID;"
    "CREATE TABLE sources (name TEXT PRIMARY KEY, size INT, mtime INT, ino INT, ctime INT,"
    " dev INT, payload BLOB, crc INT) WITHOUT ROWID;"
    "CREATE TABLE apps (name TEXT PRIMARY KEY, payload BLOB, crc INT) WITHOUT ROWID;"
    "CREATE TABLE blobs (name TEXT PRIMARY KEY, size INT, sha256 TEXT, crc INT) WITHOUT ROWID;"
    f"PRAGMA user_version={SCHEMA};"
)


def _outside(folders: Collection[str]) -> list[tuple[str, tuple[str, ...]]]:
    """SQL conditions (with their values) on `name` that together select every name under
    none of `folders`: the ranges between them, in order. A folder's names are those from
    "a/b/" up to "a/b0" ("0" follows "/"), in SQLite's byte order as in Python's."""
    ranges: list[tuple[str, str]] = []
    for folder in sorted(set(folders)):
        if not folder.endswith("/"):
            raise ValueError(f"not a folder (no trailing /): {folder!r}")
        if ranges and folder < ranges[-1][1]:
            continue  # inside the folder before it
        ranges.append((folder, folder[:-1] + "0"))
    found: list[tuple[str, tuple[str, ...]]] = [("name < ?", (ranges[0][0],))] if ranges else []
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if end < start:
            found.append(("name >= ? AND name < ?", (end, start)))
    if ranges:
        found.append(("name >= ?", (ranges[-1][1],)))
    return found


def _app_folder(name: str) -> str | None:
    """`apps/<key>/` for a source row's name under an app folder (the folder's own
    name, `apps/<key>/`, included), else None."""
    parts = name.split("/", 2)
    if len(parts) == 3 and parts[0] == "apps" and parts[1]:
        return f"apps/{parts[1]}/"
    return None


def _crc(name: str, key: StatKey, sha256: str) -> int:
    return zlib.crc32(f"{name}\0{tuple(key)}\0{sha256}".encode("utf-8", "surrogateescape"))


def _blob_crc(oid: str, size: int, sha256: str) -> int:
    return zlib.crc32(f"{oid}\0{size}\0{sha256}".encode())


@dataclass(frozen=True)
class Record:
    key: StatKey
    sha256: str


# Source rows held before they are written (a cold read remembers one per file).
_PENDING_ROWS = 2048


class BuildCache:
    """Open with `BuildCache.for_output(output)`; `BuildCache(None)` remembers nothing."""

    def __init__(self, path: Path | None):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._sources: dict[str, tuple[StatKey, bytes]] | None = None
        self._pending_sources: list[tuple[str, StatKey, bytes]] = []
        self._sources_asked: set[str] = set()
        self._source_folders: set[str] | None = set()  # loaded in full; None: every row
        self.problems: list[str] = []  # why the cache was dropped, for the build report
        if path is not None:
            self._open(path)

    @classmethod
    def for_output(cls, output: Path) -> BuildCache:
        """The cache of `output`.

        Raises:
            OutputError: the cache folder or file is a link or not what appshelf makes
                (the parent may be a checkout: a committed link would send SQLite's
                writes outside the tree).
        """
        output = output.absolute()
        path = output.parent / CACHE_DIR / f"{output.name}.sqlite"
        for entry, want in ((path.parent, stat.S_ISDIR), (path, stat.S_ISREG)):
            with contextlib.suppress(FileNotFoundError):
                if not want(os.lstat(entry).st_mode):
                    kind = "folder" if want is stat.S_ISDIR else "file"
                    raise OutputError(
                        f"{entry}: is a link or not a {kind}, so it is not appshelf's build "
                        "cache; nothing was changed. Move it away (or delete it), then build again"
                    )
        return cls(path)

    def _open(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA:
                self._db.executescript(
                    "DROP TABLE IF EXISTS artifacts; DROP TABLE IF EXISTS outputs;"
                    "DROP TABLE IF EXISTS sources; DROP TABLE IF EXISTS apps;"
                    "DROP TABLE IF EXISTS blobs;" + _CREATE
                )
        except (sqlite3.Error, OSError) as exc:
            self._discard(exc)

    def _discard(self, exc: BaseException) -> None:
        """Drop a broken cache: the build goes on without it and re-hashes."""
        self.problems.append(f"build cache {self.path} was unusable ({exc}); rebuilt it")
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None
        if self.path is not None:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(f"{self.path}{suffix}")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, isolation_level=None)
                self._db.executescript(_CREATE)
            except (sqlite3.Error, OSError):
                self._db = None  # unwritable: carry on without a cache

    def load(
        self, table: str, skip_apps: Collection[str] = (), *, skip_folders: Collection[str] = ()
    ) -> dict[str, Record]:
        """Every sound row of `artifacts` or `outputs`; damaged rows are left out. Rows
        under `skip_folders` (each ending in "/"), and for `outputs` under `apps/<key>/`
        of `skip_apps`, are not even fetched (SQLite walks its index; Python never sees
        them): a no-op build reuses every app, a build of one app fetches its rows."""
        assert table in ("artifacts", "outputs")
        if self._db is None:
            return {}
        select = f"SELECT name, size, mtime, ino, ctime, dev, sha256, crc FROM {table}"
        try:
            if skip_folders:
                rows = []
                for where, bounds in _outside(skip_folders):
                    rows += self._db.execute(f"{select} WHERE {where}", bounds).fetchall()
            elif not skip_apps:
                rows = self._db.execute(select).fetchall()
            else:
                assert table == "outputs"
                rows = self._output_rows(self._db, select, set(skip_apps))
        except sqlite3.Error as exc:
            self._discard(exc)
            return {}
        records: dict[str, Record] = {}
        for name, size, mtime, ino, ctime, dev, sha256, crc in rows:
            key = StatKey(size, mtime, ino, ctime, dev)
            if (
                isinstance(name, str)
                and isinstance(sha256, str)
                and all(isinstance(v, int) for v in key)
                and crc == _crc(name, key, sha256)
            ):
                records[name] = Record(key, sha256)
        return records

    @staticmethod
    def _output_rows(db: sqlite3.Connection, select: str, skip: set[str]) -> list[Any]:
        """The `outputs` rows but those under `apps/<key>/` of the apps in `skip`."""
        apps = db.execute(
            "SELECT DISTINCT substr(name, 6, instr(substr(name, 6), '/') - 1) FROM "
            "outputs WHERE name >= 'apps/' AND name < 'apps0'"
        ).fetchall()
        rows = db.execute(f"{select} WHERE name < 'apps/' OR name >= 'apps0'").fetchall()
        # Content-addressed copies kept for the previous snapshot (builder/writer.py):
        # few, and their removal must not wait until their app changes again.
        rows += db.execute(
            f"{select} WHERE name >= 'apps/' AND name < 'apps0' AND sha256 LIKE ?",
            (f"{KEPT_TOKEN}%",),
        ).fetchall()
        for (key,) in apps:
            if key not in skip:
                rows += db.execute(
                    f"{select} WHERE name >= ? AND name < ?", (f"apps/{key}/", f"apps/{key}0")
                ).fetchall()
        return rows

    def store(self, table: str, rows: Iterable[tuple[str, StatKey, str]]) -> None:
        assert table in ("artifacts", "outputs")
        if self._db is None:
            return
        try:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ((name, *key, sha, _crc(name, key, sha)) for name, key, sha in rows),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._discard(exc)

    def forget(self, table: str, names: Iterable[str] | None = None) -> None:
        """Delete the given rows, or the whole table when `names` is None."""
        assert table in ("artifacts", "outputs", "sources", "apps", "blobs")
        if self._db is None:
            return
        try:
            if names is None:
                self._db.execute(f"DELETE FROM {table}")
            else:
                self._db.execute("BEGIN")
                self._db.executemany(f"DELETE FROM {table} WHERE name = ?", ((n,) for n in names))
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._discard(exc)

    def load_apps(self) -> dict[str, bytes]:
        """app key -> the payload builder/memo.py stored; damaged rows are left out."""
        rows = self._select("SELECT name, payload, crc FROM apps")
        return {
            name: payload
            for name, payload, crc in rows
            if isinstance(name, str)
            and isinstance(payload, bytes)
            and zlib.crc32(payload, zlib.crc32(name.encode())) == crc
        }

    def store_apps(self, rows: Iterable[tuple[str, bytes]]) -> None:
        self._insert(
            "INSERT OR REPLACE INTO apps VALUES (?, ?, ?)",
            ((n, p, zlib.crc32(p, zlib.crc32(n.encode()))) for n, p in rows),
        )

    def _select(self, sql: str) -> list[tuple[object, ...]]:
        """Every row of `sql`; none when the cache is off or a SQLite error dropped it."""
        if self._db is None:
            return []
        try:
            return list(self._db.execute(sql).fetchall())
        except sqlite3.Error as exc:
            self._discard(exc)
            return []

    def _insert(self, sql: str, rows: Iterable[tuple[object, ...]]) -> None:
        """`rows` in one transaction; a SQLite error drops the cache."""
        if self._db is None:
            return
        try:
            self._db.execute("BEGIN")
            self._db.executemany(sql, rows)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._discard(exc)

    # The BlobMemory protocol of filehash.py.
    def load_blobs(self) -> dict[str, tuple[str, int]]:
        """git blob id -> (sha256, size); damaged rows are left out."""
        rows = self._select("SELECT name, size, sha256, crc FROM blobs")
        return {
            name: (sha256, size)
            for name, size, sha256, crc in rows
            if isinstance(name, str)
            and isinstance(sha256, str)
            and isinstance(size, int)
            and crc == _blob_crc(name, size, sha256)
        }

    def store_blobs(self, rows: Iterable[tuple[str, str, int]]) -> None:
        """(blob id, sha256, size) rows."""
        self._insert(
            "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?)",
            ((oid, size, sha, _blob_crc(oid, size, sha)) for oid, sha, size in rows),
        )

    def forget_folders(self, table: str, prefixes: Iterable[str]) -> None:
        """Delete the rows of files under the given folders (each prefix ends in "/"):
        an app that is gone, whose rows no complete read of the tree will prune."""
        assert table in ("artifacts", "sources")
        if self._db is None:
            return
        try:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"DELETE FROM {table} WHERE name >= ? AND name < ?",
                ((prefix, prefix[:-1] + "0") for prefix in prefixes),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._discard(exc)

    # The SourceMemo protocol of source/tree.py.
    def recall(self, name: str, key: StatKey) -> bytes | None:
        self._sources_asked.add(name)
        row = self._source_row(name)
        if row is None or row[0] != key:
            return None
        return row[1]

    def _source_row(self, name: str) -> tuple[StatKey, bytes] | None:
        """A no-op build asks for a few rows (fetched one by one), a build of a few changed
        apps for their folders' rows (fetched a folder at a time: not the other apps'),
        a larger one for most (the whole table, at once)."""
        folders, folder = self._source_folders, _app_folder(name)
        if folders is None or (folder is not None and folder in folders):
            return (self._sources or {}).get(name)
        if len(self._sources_asked) <= _FEW_SOURCES or folder is None:
            return self._load_sources(name).get(name)
        if len(folders) < _FEW_FOLDERS:
            self._sources = self._sources or {}
            self._sources.update(self._load_sources(folder=folder))
            folders.add(folder)
        else:
            self._sources, self._source_folders = self._load_sources(), None
        return self._sources.get(name)

    def remember(self, name: str, key: StatKey, payload: bytes) -> None:
        """Keep a parsed source file's or folder listing's `payload` for the next build,
        written in batches: a cold read of 100,000 versions held every row until the
        end (about 0.75 KB each traced, benchmarks/NOTES.md)."""
        if settled(key):
            self._pending_sources.append((name, key, payload))
            if len(self._pending_sources) >= _PENDING_ROWS:
                self._write_pending()

    def _load_sources(
        self, name: str | None = None, folder: str | None = None
    ) -> dict[str, tuple[StatKey, bytes]]:
        """Every sound row, or only `name`'s, or those under `folder`."""
        if self._db is None:
            return {}
        select = "SELECT name, size, mtime, ino, ctime, dev, payload, crc FROM sources"
        try:
            if name is not None:
                rows = self._db.execute(f"{select} WHERE name = ?", (name,)).fetchall()
            elif folder is not None:
                bounds = (folder, folder[:-1] + "0")
                rows = self._db.execute(f"{select} WHERE name >= ? AND name < ?", bounds).fetchall()
            else:
                rows = self._db.execute(select).fetchall()
        except sqlite3.Error as exc:
            self._discard(exc)
            return {}
        loaded: dict[str, tuple[StatKey, bytes]] = {}
        for name, size, mtime, ino, ctime, dev, payload, crc in rows:
            if isinstance(payload, bytes) and zlib.crc32(payload, zlib.crc32(name.encode())) == crc:
                loaded[name] = (StatKey(size, mtime, ino, ctime, dev), payload)
        return loaded

    def flush(self, prune: bool = False, keep: Callable[[str], bool] | None = None) -> None:
        """Write what `remember` collected (one transaction, not one per file); with
        `prune`, after a complete read of the tree, drop rows of files no longer asked
        about (deleted or renamed) unless `keep` says they belong to a folder that was
        not read (an unchanged app), so the cache does not grow forever. Only the rows
        loaded are looked at: after a build of a few apps, those of their folders (an app
        that is gone is forgotten as a whole, `forget_folders`)."""
        if prune and self._sources:
            unasked = set(self._sources) - self._sources_asked
            self.forget("sources", {n for n in unasked if keep is None or not keep(n)})
        if prune:  # read once per build: free it
            self._sources, self._sources_asked, self._source_folders = None, set(), set()
        self._write_pending()

    def _write_pending(self) -> None:
        """Write the rows `remember` collected, in one transaction (not one per file)."""
        pending, self._pending_sources = self._pending_sources, []
        if self._db is None or not pending:
            return
        try:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (name, *key, payload, zlib.crc32(payload, zlib.crc32(name.encode())))
                    for name, key, payload in pending
                ),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._discard(exc)

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
