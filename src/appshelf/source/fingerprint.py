"""What an app folder looks like to stat(), so an unchanged app need not be read again.

An app's entries are every folder and file of `apps/<key>/` and of its version folders,
each with its stat key. A folder's mtime and ctime move whenever an entry is added,
removed or renamed in it, and a file's whenever it is written, so re-stat-ing the
recorded entries (one lstat each, no listing) tells whether anything changed: a record
keeps their names and one digest of their stat keys.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from appshelf.filestat import STAT_LINE, StatKey, settled, stat_key, stat_line


class AppEntries(NamedTuple):
    """An app folder's entries as a cache record keeps them: their names (relative to
    the app folder, sorted), one per line, and one digest of their stat keys. Not the
    stat keys themselves: a build holds this for every app it reads."""

    names: str
    digest: str


def app_entries(folder: Path, now_ns: int | None = None) -> AppEntries | None:
    """The app folder itself ("") and every entry below it (folders end in "/"), or None
    when stat cannot vouch for the content: a symlink (its target's changes would not
    show), a folder deeper than a version folder, an unreadable folder, or an entry
    changed in the last seconds (timestamps are coarser than writes)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    try:
        found: list[tuple[str, StatKey]] = [("", stat_key(os.lstat(folder)))]
        pending = [(str(folder), "")]
        while pending:
            current, prefix = pending.pop()
            with os.scandir(current) as scan:
                for entry in scan:
                    if entry.is_symlink():
                        return None
                    key = stat_key(entry.stat(follow_symlinks=False))
                    if entry.is_dir(follow_symlinks=False):
                        if prefix:
                            return None  # only app/ and app/<version>/ hold files
                        name = f"{entry.name}/"
                        pending.append((entry.path, name))
                    else:
                        name = prefix + entry.name
                    found.append((name, key))
    except OSError:
        return None
    if not all(settled(key, now_ns) for _, key in found):
        return None  # changed in the last seconds: not memoisable
    found.sort()
    return AppEntries("\n".join(name for name, _ in found), keys_digest(key for _, key in found))


def keys_digest(keys: Iterable[StatKey]) -> str:
    """One digest for many stat keys: a record stores it instead of the keys."""
    return lines_digest(stat_line(key) for key in keys)


def lines_digest(lines: Iterable[bytes]) -> str:
    """`keys_digest` of keys already made lines (`filestat.stat_line`)."""
    return hashlib.sha256(b"".join(lines)).hexdigest()


def current_digest(folder: Path | str, names: Iterable[str]) -> str | None:
    """`keys_digest` of what lstat() says now about `names` (relative to `folder`; ""
    is the folder itself), or None when one is missing. A new entry, or a removed or
    renamed one, moves the stat key of the folder holding it, which is among them.
    The lines are made from the stat results directly (no `StatKey` per file: this runs
    for every file of every app on a no-op)."""
    base = str(folder)
    lstat = os.lstat
    lines = []
    try:
        for name in names:
            st = lstat(f"{base}/{name}" if name else base)
            lines.append(
                STAT_LINE % (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_dev)
            )
    except OSError:
        return None
    return lines_digest(lines)
