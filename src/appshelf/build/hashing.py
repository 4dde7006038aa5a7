"""Streaming SHA-256 of artifacts, spread over threads (hashlib releases the GIL), with
a stat-keyed cache (build/cache.py) so an unchanged artifact is never read again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from appshelf.build.cache import BuildCache, StatKey, parallel_map, settled, stat_key

# Plain buffered reads, not memory maps: a map gains a few percent of throughput, but a
# file truncated by another process while mapped kills the build with SIGBUS instead
# of a clear error.
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileHash:
    sha256: str
    size: int


def _hash_open_file(path: Path) -> tuple[FileHash, StatKey | None]:
    """Hash by streaming fixed-size chunks: memory stays flat whatever the file size.
    Also returns the file's stat key when it did not change while being read."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb", buffering=0) as handle:
        before = stat_key(os.fstat(handle.fileno()))
        buffer = bytearray(CHUNK_BYTES)
        view = memoryview(buffer)
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
        after = stat_key(os.fstat(handle.fileno()))
    return FileHash(digest.hexdigest(), size), (after if after == before else None)


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
    return _hash_open_file(path)[0]


def hash_files(
    paths: Iterable[Path],
    workers: int | None = None,
    cache: BuildCache | None = None,
    stats: HashStats | None = None,
    prune: bool = False,
    keep: Callable[[str], bool] | None = None,
) -> dict[Path, FileHash]:
    """Hash many files in parallel; the result maps each path to its digest and size.

    With a cache, a file whose stat key matches its row is not read; every file that is
    read (and was stable while read, and is not racily new) is remembered; `prune`
    (when `paths` are all of the build's artifacts but those `keep` names) forgets every
    other row."""
    unique = sorted(set(paths))
    result: dict[Path, FileHash] = {}
    todo = unique
    if cache is not None:
        known = cache.load("artifacts")
        if prune:
            stale = set(known) - {str(path) for path in unique}
            cache.forget("artifacts", {n for n in stale if keep is None or not keep(n)})
        candidates = [path for path in unique if str(path) in known]
        todo = [path for path in unique if str(path) not in known]
        for path, key in zip(candidates, parallel_map(_stat_or_none, candidates), strict=True):
            record = known[str(path)]
            if key is not None and key == record.key:
                result[path] = FileHash(record.sha256, key[0])
            else:
                todo.append(path)
    if not todo:
        return result
    workers = workers or min(len(todo), os.cpu_count() or 1)
    if workers <= 1:
        hashed = [_hash_open_file(path) for path in todo]
    elif len(todo) <= 1000:
        # One future per file balances big files across cores; its ~0.1 ms overhead
        # only matters for thousands of small files, which go in slices instead.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            hashed = list(pool.map(_hash_open_file, todo))
    else:
        hashed = parallel_map(_hash_open_file, todo, workers)
    for path, (digest, _key) in zip(todo, hashed, strict=True):
        result[path] = digest
    if stats is not None:
        stats.files_read += len(todo)
        stats.bytes_read += sum(digest.size for digest, _key in hashed)
    if cache is not None:
        cache.store(
            "artifacts",
            (
                (str(path), key, digest.sha256)
                for path, (digest, key) in zip(todo, hashed, strict=True)
                if key is not None and settled(key)
            ),
        )
    return result
