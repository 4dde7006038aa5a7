"""Artifact hashing: both ways of streaming a file (plain reads, and reads by a helper
thread one chunk ahead) give hashlib's digest, and a file that changes, shrinks or fails
to read while it is hashed is never remembered under a digest it does not have."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import appshelf.filehash as hashing
from appshelf.builder.cache import BuildCache
from appshelf.filehash import HashStats, hash_file, hash_files

SMALL_CHUNK = 4096
REAL_SHA256 = hashlib.sha256


def _no_read_ahead_threads() -> bool:
    return not any(t.name.startswith("appshelf-read-ahead") for t in threading.enumerate())


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk boundaries at 4 KiB, and read-ahead from the first byte, so small files
    cover every edge of both loops."""
    monkeypatch.setattr(hashing, "CHUNK_BYTES", SMALL_CHUNK)
    monkeypatch.setattr(hashing, "READ_AHEAD_MIN_BYTES", 0)


@pytest.mark.parametrize("read_ahead", [False, True])
@pytest.mark.parametrize(
    "size",
    [0, 1, SMALL_CHUNK - 1, SMALL_CHUNK, SMALL_CHUNK + 1, 2 * SMALL_CHUNK, 7 * SMALL_CHUNK + 3],
)
def test_digest_and_size_match_hashlib(
    small_chunks: None, tmp_path: Path, size: int, read_ahead: bool
) -> None:
    data = os.urandom(size)
    path = tmp_path / "a.bin"
    path.write_bytes(data)
    digest = hash_files([path], workers=1, read_ahead=read_ahead)[path]
    assert (digest.sha256, digest.size) == (hashlib.sha256(data).hexdigest(), size)
    assert _no_read_ahead_threads()


def test_large_file_with_real_chunk_sizes(tmp_path: Path) -> None:
    """Above READ_AHEAD_MIN_BYTES, not a whole number of chunks, several files at once."""
    datas = [os.urandom(hashing.READ_AHEAD_MIN_BYTES + extra) for extra in (1, 12345)]
    paths = [tmp_path / f"{index}.bin" for index in range(len(datas))]
    for path, data in zip(paths, datas, strict=True):
        path.write_bytes(data)
    for read_ahead in (None, False, True):
        for workers in (1, 2):
            result = hash_files(paths, workers=workers, read_ahead=read_ahead)
            for path, data in zip(paths, datas, strict=True):
                assert result[path].sha256 == hashlib.sha256(data).hexdigest()
    assert hash_file(paths[0]).sha256 == hashlib.sha256(datas[0]).hexdigest()


class _TruncateOnFirstUpdate:
    """A sha256 that truncates the file being hashed while the first chunk is hashed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inner = REAL_SHA256()
        self.truncated = False

    def update(self, data: Any) -> None:
        if not self.truncated:
            os.truncate(self.path, SMALL_CHUNK + 10)
            self.truncated = True
        self.inner.update(data)

    def hexdigest(self) -> str:
        return self.inner.hexdigest()


@pytest.mark.parametrize("read_ahead", [False, True])
def test_file_truncated_while_hashed_is_not_remembered(
    small_chunks: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_ahead: bool
) -> None:
    """Whatever was read of a shrinking file is not cached: the next build reads it
    again (and the writer refuses to publish bytes that do not match the digest)."""
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(10 * SMALL_CHUNK))
    monkeypatch.setattr(hashing, "settled", lambda key: True)  # only the stat check stops it
    cache = BuildCache(tmp_path / "cache.sqlite")
    with monkeypatch.context() as patch:
        patch.setattr(hashing.hashlib, "sha256", lambda: _TruncateOnFirstUpdate(path))
        hash_files([path], workers=1, cache=cache, read_ahead=read_ahead)
    stats = HashStats()
    digest = hash_files([path], workers=1, cache=cache, stats=stats, read_ahead=read_ahead)[path]
    assert stats.files_read == 1
    assert (digest.sha256, digest.size) == (
        hashlib.sha256(path.read_bytes()).hexdigest(),
        SMALL_CHUNK + 10,
    )
    cache.close()
    assert _no_read_ahead_threads()


def test_read_error_in_the_read_ahead_thread_names_the_file(
    small_chunks: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(os.urandom(10 * SMALL_CHUNK))
    real_preadv = os.preadv
    calls = 0

    def failing_preadv(fd: int, buffers: Any, offset: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(hashing.os, "preadv", failing_preadv)
    with pytest.raises(OSError) as caught:
        hash_files([path], workers=1, read_ahead=True)
    assert (caught.value.errno, caught.value.filename) == (errno.EIO, str(path))
    assert _no_read_ahead_threads()


def test_read_ahead_is_used_only_with_a_core_to_spare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real = hashing._hash_open_file

    def spy(path: Path, read_ahead: bool = False) -> Any:
        seen.append(read_ahead)
        return real(path, read_ahead)

    monkeypatch.setattr(hashing, "_hash_open_file", spy)
    paths = [tmp_path / f"{index}.bin" for index in range(4)]
    for path in paths:
        path.write_bytes(b"x")
    for cores, workers, expected in ((2, 1, True), (2, 2, False), (4, 2, True), (1, 1, False)):
        monkeypatch.setattr(hashing.os, "cpu_count", lambda cores=cores: cores)
        seen.clear()
        hash_files(paths, workers=workers)
        assert set(seen) == {expected}, (cores, workers)
