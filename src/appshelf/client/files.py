"""Atomic file writes for everything the client saves (artifacts, lock files, state),
and bounded reads of the small files it loads (state, lock and keys files)."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from appshelf.filestat import fsync_dir

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def _create_temp(target: Path, mode: int) -> tuple[int, Path]:
    """A new, unpredictable temp file beside `target`; the kernel applies the umask to `mode`.

    `tempfile.mkstemp` always makes 0600 files, which breaks Docker `COPY` and shared
    folders; curl, pip and `helm pull` follow the umask, so the client does too.
    """
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
        try:
            return os.open(tmp, _NEW_FILE, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{target.parent}: cannot create a temporary file")


@contextmanager
def atomic_file(target: Path, mode: int = 0o666) -> Iterator[BinaryIO]:
    """Write to a temp file beside `target`, fsync, rename over it: all or nothing.

    The file gets `mode` less the umask (0644 under the usual umask 022). If the body
    raises, the temp file is removed and `target` is untouched.
    """
    folder = target.parent
    fd, tmp = _create_temp(target, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading; a FIFO or device would block or never end.

    Opened non-blocking, so even a FIFO returns at once; raises OSError otherwise.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_small_file(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file; OSError (with strerror) when larger."""
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than the {limit:,} bytes allowed", str(path))
    return data
