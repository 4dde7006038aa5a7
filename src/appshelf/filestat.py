"""Stat keys and threaded stat-heavy maps, shared by the source reader and the build.

A stat key (size, mtime_ns, inode, ctime_ns, device) is how appshelf tells, without
reading a file, that it is the one seen before: ctime cannot be set from user space,
so even a restored mtime shows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, TypeVar

T = TypeVar("T")
R = TypeVar("R")

RACY_NS = 2_000_000_000  # a file touched this recently is read again, not remembered


class StatKey(NamedTuple):
    """What one stat() says about a file, in the order the build cache stores it."""

    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int
    dev: int


def stat_key(st: os.stat_result) -> StatKey:
    return StatKey(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_dev)


STAT_LINE = b"%d %d %d %d %d\n"  # a stat key's fields, in StatKey's order


def stat_line(key: StatKey) -> bytes:
    """A stat key as one line of the digests records keep (`source.fingerprint`): about
    80 bytes held, against about 250 for the key (a tuple of five large ints), for a
    build that holds one per output file until its records are stored."""
    return STAT_LINE % key


def settled(key: StatKey, now_ns: int | None = None) -> bool:
    """Old enough that a later change must move mtime or ctime visibly (timestamps are
    coarser than writes: git's "racy clean" problem)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    return now_ns - max(key.mtime_ns, key.ctime_ns) > RACY_NS


def parallel_map(
    function: Callable[[T], R], items: Sequence[T], workers: int | None = None
) -> list[R]:
    """`map` over threads, in a few large slices: for work that waits in syscalls or
    releases the GIL (stat, open/write/close, hashlib). One future per item would cost
    more than a small file's I/O."""
    workers = workers or min(4, 2 * (os.cpu_count() or 1))
    if len(items) < 64 or workers <= 1:
        return [function(item) for item in items]
    step = -(-len(items) // (workers * 4))
    slices = [items[i : i + step] for i in range(0, len(items), step)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(lambda part: [function(item) for item in part], slices)
        return [result for part in parts for result in part]


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable; some filesystems cannot fsync a folder, which
    is fine (the rename itself is still atomic)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
