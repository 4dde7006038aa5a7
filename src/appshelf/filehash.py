"""Streaming SHA-256 of artifacts, spread over threads (hashlib releases the GIL), with
an optional stat-keyed memory (the builder's cache, builder/cache.py) so an unchanged
artifact is never read again. Shared by the builder and deploy, so it imports neither."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from io import FileIO
from pathlib import Path
from queue import SimpleQueue
from typing import TYPE_CHECKING, Protocol

from appshelf.filestat import StatKey, parallel_map, settled, stat_key

if TYPE_CHECKING:
    from hashlib import _Hash

# Plain reads, not memory maps: a map saves the copy out of the page cache, but a file
# truncated by another process while mapped kills the build with SIGBUS instead of a
# clear error. That copy costs ~15% of one core (hashlib alone runs at openssl's speed),
# so a large file hashed while a core is idle has its next chunk read by a helper thread
# while this one hashes the current chunk (see benchmarks/NOTES.md for the figures).
CHUNK_BYTES = 1 << 20
READ_AHEAD_MIN_BYTES = 8 << 20  # below this, starting a thread costs more than it saves


@dataclass(frozen=True)
class FileHash:
    sha256: str
    size: int


class KnownHash(Protocol):
    """A remembered digest: the file's stat key when it was hashed, and its SHA-256."""

    @property
    def key(self) -> StatKey: ...

    @property
    def sha256(self) -> str: ...


class HashMemory(Protocol):
    """Where digests of unchanged files are remembered (the builder's `BuildCache`)."""

    def load(self, table: str) -> Mapping[str, KnownHash]: ...

    def forget(self, table: str, names: Iterable[str] | None = None) -> None: ...

    def store(self, table: str, rows: Iterable[tuple[str, StatKey, str]]) -> None: ...


def _hash_stream(handle: FileIO, digest: _Hash) -> int:
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    size = 0
    while count := handle.readinto(buffer):
        digest.update(view[:count])
        size += count
    return size


def _hash_read_ahead(fd: int, digest: _Hash) -> int:
    """Double buffering: a helper thread reads the next chunk (os.preadv releases the
    GIL) while this thread hashes the current one. Plain queues, not futures: a future
    per chunk cost ~3% of the throughput. A read error is raised here."""
    buffers = (bytearray(CHUNK_BYTES), bytearray(CHUNK_BYTES))
    free: SimpleQueue[int | None] = SimpleQueue()  # None: stop reading
    filled: SimpleQueue[tuple[int, int] | BaseException] = SimpleQueue()

    def read() -> None:
        offset = 0
        try:
            while (index := free.get()) is not None:
                count = os.preadv(fd, [buffers[index]], offset)
                filled.put((index, count))
                if not count:
                    return
                offset += count
        except BaseException as exc:  # handed to the hashing thread, which raises it
            filled.put(exc)

    for index in range(len(buffers)):
        free.put(index)
    reader = threading.Thread(target=read, name="appshelf-read-ahead", daemon=True)
    reader.start()
    size = 0
    try:
        while True:
            item = filled.get()
            if isinstance(item, BaseException):
                raise item
            index, count = item
            if not count:
                return size
            digest.update(memoryview(buffers[index])[:count])
            size += count
            free.put(index)
    finally:
        free.put(None)
        reader.join()


def _hash_open_file(path: Path, read_ahead: bool = False) -> tuple[FileHash, StatKey | None]:
    """Hash by streaming fixed-size chunks: memory stays flat whatever the file size.
    Also returns the file's stat key when it did not change while being read."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        before = stat_key(os.fstat(handle.fileno()))
        try:
            if read_ahead and before.size >= READ_AHEAD_MIN_BYTES:
                size = _hash_read_ahead(handle.fileno(), digest)
            else:
                size = _hash_stream(handle, digest)
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        after = stat_key(os.fstat(handle.fileno()))
    stable = after == before and size == before.size
    return FileHash(digest.hexdigest(), size), (after if stable else None)


@dataclass
class HashStats:
    files_read: int = 0
    bytes_read: int = 0


def _stat_or_none(path: Path) -> StatKey | None:
    try:
        return stat_key(os.stat(path))
    except OSError:
        return None


def hash_file(path: Path) -> FileHash:
    return _hash_open_file(path, read_ahead=(os.cpu_count() or 1) >= 2)[0]


def hash_files(
    paths: Iterable[Path],
    workers: int | None = None,
    cache: HashMemory | None = None,
    stats: HashStats | None = None,
    prune: bool = False,
    keep: Callable[[str], bool] | None = None,
    read_ahead: bool | None = None,
) -> dict[Path, FileHash]:
    """Hash many files in parallel; the result maps each path to its digest and size.

    With a cache, a file whose stat key matches its row is not read; every file that is
    read (and was stable while read, and is not racily new) is remembered; `prune`
    (when `paths` are all of the build's artifacts but those `keep` names) forgets every
    other row.

    `read_ahead` (default: when the workers leave at least one core per worker idle)
    gives each large file a helper thread that reads while the worker hashes. With every
    core already hashing a file, that thread only adds hand-offs, so it is left out."""
    unique = sorted(set(paths))
    result: dict[Path, FileHash] = {}
    todo = unique if cache is None else _recall(cache, unique, result, prune, keep)
    if not todo:
        return result
    hashed = _hash_all(todo, workers, read_ahead)
    for path, (digest, _key) in zip(todo, hashed, strict=True):
        result[path] = digest
    if stats is not None:
        stats.files_read += len(todo)
        stats.bytes_read += sum(digest.size for digest, _key in hashed)
    if cache is not None:
        _remember(cache, todo, hashed)
    return result


def _recall(
    cache: HashMemory,
    unique: list[Path],
    result: dict[Path, FileHash],
    prune: bool,
    keep: Callable[[str], bool] | None,
) -> list[Path]:
    """Put into `result` each file whose stat key still matches its row; return the
    files that must be read (no row first, then those that changed)."""
    known = cache.load("artifacts")
    if prune:
        _prune(cache, known, unique, keep)
    candidates = [path for path in unique if str(path) in known]
    todo = [path for path in unique if str(path) not in known]
    for path, key in zip(candidates, parallel_map(_stat_or_none, candidates), strict=True):
        record = known[str(path)]
        if key is not None and key == record.key:
            result[path] = FileHash(record.sha256, key.size)
        else:
            todo.append(path)
    return todo


def _prune(
    cache: HashMemory,
    known: Mapping[str, KnownHash],
    unique: list[Path],
    keep: Callable[[str], bool] | None,
) -> None:
    """Forget every row but those of `unique` and those `keep` names."""
    stale = set(known) - {str(path) for path in unique}
    cache.forget("artifacts", {n for n in stale if keep is None or not keep(n)})


def _hash_all(
    todo: list[Path], workers: int | None, read_ahead: bool | None
) -> list[tuple[FileHash, StatKey | None]]:
    """Hash `todo` (not empty) on `workers` threads, in order."""
    cores = os.cpu_count() or 1
    workers = workers or min(len(todo), cores)
    if read_ahead is None:
        read_ahead = 2 * workers <= cores
    hash_one = partial(_hash_open_file, read_ahead=read_ahead)
    if workers <= 1:
        return [hash_one(path) for path in todo]
    if len(todo) <= 1000:
        # One future per file balances big files across cores; its ~0.1 ms overhead
        # only matters for thousands of small files, which go in slices instead.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(hash_one, todo))
    return parallel_map(hash_one, todo, workers)


def _remember(
    cache: HashMemory, todo: list[Path], hashed: list[tuple[FileHash, StatKey | None]]
) -> None:
    """Store the digests of the files that were stable while read and are not racily new."""
    cache.store(
        "artifacts",
        (
            (str(path), key, digest.sha256)
            for path, (digest, key) in zip(todo, hashed, strict=True)
            if key is not None and settled(key)
        ),
    )
