"""Streaming SHA-256 of artifacts, spread over threads (hashlib releases the GIL), with
an optional stat-keyed memory (the builder's cache, builder/cache.py) so an unchanged
artifact is never read again, and an optional content-keyed one (git blob id -> digest)
that also holds in a fresh clone. Shared by the builder and deploy, so it imports
neither."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
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

    def load(
        self, table: str, *, skip_folders: Collection[str] = ()
    ) -> Mapping[str, KnownHash]: ...  # rows under `skip_folders` (each ends in "/") left out

    def forget(self, table: str, names: Iterable[str] | None = None) -> None: ...

    def store(self, table: str, rows: Iterable[tuple[str, StatKey, str]]) -> None: ...


class BlobMemory(Protocol):
    """Digests by git blob id (the builder's `BuildCache`): content-addressed, so they
    hold for the same file in any clone."""

    def load_blobs(self) -> Mapping[str, tuple[str, int]]: ...  # blob id -> (sha256, size)

    def store_blobs(self, rows: Iterable[tuple[str, str, int]]) -> None: ...

    def forget(self, table: str, names: Iterable[str] | None = None) -> None: ...


def _hash_stream(handle: FileIO, digests: Sequence[_Hash]) -> int:
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    size = 0
    while count := handle.readinto(buffer):
        for digest in digests:
            digest.update(view[:count])
        size += count
    return size


def _hash_read_ahead(fd: int, digests: Sequence[_Hash]) -> int:
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
            for digest in digests:
                digest.update(memoryview(buffers[index])[:count])
            size += count
            free.put(index)
    finally:
        free.put(None)
        reader.join()


def _hash_open_file(path: Path, read_ahead: bool = False) -> tuple[FileHash, StatKey | None]:
    """Hash by streaming fixed-size chunks: memory stays flat whatever the file size.
    Also returns the file's stat key when it did not change while being read."""
    digest, key, _blob = _hash_with_blob(path, read_ahead)
    return digest, key


def _hash_with_blob(
    path: Path, read_ahead: bool = False, blob_algorithm: str | None = None
) -> tuple[FileHash, StatKey | None, str | None]:
    """`_hash_open_file`, and with `blob_algorithm` (sha1 or sha256) the git blob id of
    the bytes read, in the same pass (None when the file changed while read)."""
    digest = hashlib.sha256()
    digests = [digest]
    with path.open("rb", buffering=0) as handle:
        before = stat_key(os.fstat(handle.fileno()))
        if blob_algorithm is not None:
            digests.append(hashlib.new(blob_algorithm, b"blob %d\0" % before.size))
        try:
            if read_ahead and before.size >= READ_AHEAD_MIN_BYTES:
                size = _hash_read_ahead(handle.fileno(), digests)
            else:
                size = _hash_stream(handle, digests)
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        after = stat_key(os.fstat(handle.fileno()))
    stable = after == before and size == before.size
    blob = digests[1].hexdigest() if stable and len(digests) > 1 else None
    return FileHash(digest.hexdigest(), size), (after if stable else None), blob


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


@dataclass(frozen=True)
class BlobIds:
    """Git blob ids of the files that git vouches for (source/gitstate.py), and where
    digests by blob id are remembered."""

    memory: BlobMemory
    ids: Mapping[Path, str]
    keep: Collection[str] = ()  # with `prune`: every blob id still in the source


def _blob_algorithm(oid: str | None) -> str | None:
    """git's object format, told by the id's length (SHA-1 or SHA-256 repositories)."""
    return {40: "sha1", 64: "sha256"}.get(len(oid)) if oid is not None else None


def _from_blobs(
    todo: list[Path], blobs: BlobIds, result: dict[Path, FileHash], prune: bool
) -> list[Path]:
    """Fill `result` from rows by blob id; the paths left to look at."""
    known = blobs.memory.load_blobs()
    if prune:
        wanted = set(blobs.ids.values()) | set(blobs.keep)
        blobs.memory.forget("blobs", set(known) - wanted)
    left = []
    for path in todo:
        row = known.get(blobs.ids.get(path, ""))
        if row is None:
            left.append(path)
        else:
            result[path] = FileHash(row[0], row[1])
    return left


def _from_stat(
    todo: list[Path],
    cache: HashMemory,
    result: dict[Path, FileHash],
    stale: Callable[[Iterable[str]], Iterable[str]] | None,
    keep: Collection[str],
) -> list[Path]:
    """Fill `result` from stat-keyed rows (but those under the `keep` folders); the
    paths left to read. `stale` picks the rows to forget among those loaded."""
    known = cache.load("artifacts", skip_folders=keep)
    if stale is not None:
        cache.forget("artifacts", set(stale(known)))
    candidates = [path for path in todo if str(path) in known]
    left = [path for path in todo if str(path) not in known]
    for path, key in zip(candidates, parallel_map(_stat_or_none, candidates), strict=True):
        record = known[str(path)]
        if key is not None and key == record.key:
            result[path] = FileHash(record.sha256, key.size)
        else:
            left.append(path)
    return left


def _read_all(
    todo: list[Path], workers: int | None, read_ahead: bool | None, ids: Mapping[Path, str]
) -> list[tuple[FileHash, StatKey | None, str | None]]:
    cores = os.cpu_count() or 1
    workers = workers or min(len(todo), cores)
    if read_ahead is None:
        read_ahead = 2 * workers <= cores

    def hash_one(path: Path) -> tuple[FileHash, StatKey | None, str | None]:
        algorithm = _blob_algorithm(ids.get(path))
        if algorithm is None:
            digest, key = _hash_open_file(path, read_ahead)
            return digest, key, None
        return _hash_with_blob(path, read_ahead, algorithm)

    if workers <= 1:
        return [hash_one(path) for path in todo]
    if len(todo) <= 1000:
        # One future per file balances big files across cores; its ~0.1 ms overhead
        # only matters for thousands of small files, which go in slices instead.
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(hash_one, todo))
    return parallel_map(hash_one, todo, workers)


def hash_files(
    paths: Iterable[Path],
    workers: int | None = None,
    cache: HashMemory | None = None,
    stats: HashStats | None = None,
    prune: bool = False,
    keep: Collection[str] = (),
    read_ahead: bool | None = None,
    blobs: BlobIds | None = None,
) -> dict[Path, FileHash]:
    """Hash many files in parallel; the result maps each path to its digest and size.

    With `blobs`, a file whose blob id has a row is not even stat-ed. With a cache, a
    file whose stat key matches its row is not read; every file that is read (and was
    stable while read, and is not racily new) is remembered; `prune` (when `paths` are
    all of the build's artifacts but those under the `keep` folders) forgets every other
    row; the rows under `keep` are not even loaded (a build of one changed app does not
    fetch the other apps' rows). A file
    with a blob id is remembered by it when its stat row vouched for it, or when the
    bytes read were that blob (its id is computed in the same pass): a blob id only ever
    maps to the digest of its own content.

    `read_ahead` (default: when the workers leave at least one core per worker idle)
    gives each large file a helper thread that reads while the worker hashes. With every
    core already hashing a file, that thread only adds hand-offs, so it is left out.

    Args:
        paths: the files to hash.
        workers: threads (default: one per core).
        cache: stat-keyed digests of earlier builds.
        stats: counts what was read.
        prune: `paths` are all of the build's artifacts: forget the other rows.
        keep: folders (each ending in "/") whose rows are neither loaded nor pruned.
        read_ahead: see above.
        blobs: git blob ids of the paths git vouches for, and digests by blob id.

    Raises:
        OSError: a file could not be read (`filename` names it).
    """
    unique = sorted(set(paths))
    result: dict[Path, FileHash] = {}
    ids: Mapping[Path, str] = blobs.ids if blobs is not None else {}
    todo = _from_blobs(unique, blobs, result, prune) if blobs is not None else unique
    unknown_blobs = [path for path in todo if path in ids]
    if cache is not None:
        names = {str(path) for path in unique}

        def stale(known: Iterable[str]) -> Iterable[str]:
            return (n for n in known if n not in names)

        todo = _from_stat(todo, cache, result, stale if prune else None, keep)
    hashed = _read_all(todo, workers, read_ahead, ids) if todo else []
    for path, (digest, _key, _blob) in zip(todo, hashed, strict=True):
        result[path] = digest
    if stats is not None:
        stats.files_read += len(todo)
        stats.bytes_read += sum(digest.size for digest, _key, _blob in hashed)
    _remember(cache, blobs, result, dict(zip(todo, hashed, strict=True)), unknown_blobs)
    return result


def _remember(
    cache: HashMemory | None,
    blobs: BlobIds | None,
    result: Mapping[Path, FileHash],
    hashed: Mapping[Path, tuple[FileHash, StatKey | None, str | None]],
    unknown_blobs: list[Path],
) -> None:
    """Stat rows of the files read; blob rows of the files whose blob id had none
    (`unknown_blobs`) that a stat row vouched for (not in `hashed`: not read) or whose
    bytes read were that blob."""
    if cache is not None and hashed:
        cache.store(
            "artifacts",
            (
                (str(path), key, digest.sha256)
                for path, (digest, key, _blob) in hashed.items()
                if key is not None and settled(key)
            ),
        )
    if blobs is None:
        return
    learned = []
    for path in unknown_blobs:
        oid, digest, read = blobs.ids[path], result[path], hashed.get(path)
        if read is None or read[2] == oid:
            learned.append((oid, digest.sha256, digest.size))
    if learned:
        blobs.memory.store_blobs(learned)
