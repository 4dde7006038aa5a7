"""Streaming SHA-256 of artifacts, spread over threads (hashlib releases the GIL)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileHash:
    sha256: str
    size: int


def hash_file(path: Path) -> FileHash:
    """Hash by streaming fixed-size chunks: memory stays flat whatever the file size."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return FileHash(digest.hexdigest(), size)


def hash_files(paths: Iterable[Path], workers: int | None = None) -> dict[Path, FileHash]:
    """Hash many files in parallel; the result maps each path to its digest and size."""
    unique = sorted(set(paths))
    if not unique:
        return {}
    workers = workers or min(len(unique), os.cpu_count() or 1)
    if workers <= 1:
        return {path: hash_file(path) for path in unique}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(unique, pool.map(hash_file, unique), strict=True))
