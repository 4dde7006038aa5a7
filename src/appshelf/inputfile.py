"""Reading one input file that may be hostile: a regular file, bounded, or nothing.

A FIFO would block the build forever, a device (`/dev/zero`) would read without end,
and a hard link may be another name of a file outside the source tree (an inode has no
way to say where its other names are), so each is refused before a byte is read. The
file is checked with stat() first (opening a device can have side effects), opened
non-blocking (a FIFO swapped in meanwhile cannot hang the open), and checked again on
the open descriptor, which is what is then read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appshelf.errors import InputFileError
from appshelf.filestat import stat_key

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symlink"),
)


def check_regular(st: os.stat_result, single_link: bool = True) -> None:
    """Refuse anything but a regular file, and (with `single_link`) a hard-linked one."""
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError("cannot read (Is a directory)")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a plain file")
        raise InputFileError(f"is {kind}, not a regular file; inputs must be regular files")
    if single_link and st.st_nlink > 1:
        raise InputFileError(
            f"has {st.st_nlink} hard links; inputs must not be hard links (another name "
            "may lie outside the source tree): replace it with a copy"
        )


def read_input_file(
    path: Path, limit: int, *, follow_symlinks: bool = False, single_link: bool = True
) -> tuple[bytes, os.stat_result, bool]:
    """The bytes of the regular file `path` (at most `limit`), its fstat, and whether it
    stayed unchanged while read. Without `follow_symlinks` a symlink is refused, even
    one swapped in after the check (O_NOFOLLOW)."""
    try:
        check_regular(os.stat(path, follow_symlinks=follow_symlinks), single_link)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
        fd = os.open(path, flags if follow_symlinks else flags | os.O_NOFOLLOW)
    except OSError as exc:
        raise InputFileError(f"cannot read ({exc.strerror})") from None
    try:
        before = os.fstat(fd)
        check_regular(before, single_link)
        if before.st_size > limit:
            raise InputFileError(f"file is {before.st_size} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise InputFileError(f"file grew past the limit of {limit} bytes while read")
        after = os.fstat(fd)
    except OSError as exc:
        raise InputFileError(f"cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)
    stable = stat_key(before) == stat_key(after) and len(data) == before.st_size
    return data, before, stable
