"""The writer's files beside the output, and the checks that keep them honest.

The output's parent folder is often a repository checkout (`appshelf init` scaffolds
`appshelf build . -o _site`), so anything found there may have been committed by
someone else. Nothing here trusts a name or a path read from disk:

- every housekeeping name is derived from the output's name, and an entry that carries
  one of them must be what appshelf itself would have left (a real folder, a regular
  file; never a link), or the build stops before touching anything;
- a journal names its staging folder, but is used only if that name is the derived one
  and the journal also carries the device and inode of both the output and the staging
  folder as they were when it was written: a journal committed to git, or copied from
  another machine, cannot match;
- every relative path in a journal is a plain path below the output, and every folder
  on the way to it is checked with lstat(), so no link is ever followed or renamed;
- one lock file per output keeps two builds from interleaving their housekeeping.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from appshelf.errors import OutputError
from appshelf.filestat import fsync_dir

TEMP_MARK = ".appshelf-tmp-"
OLD_MARK = ".appshelf-old-"
JOURNAL_MARK = ".appshelf-journal-"
LOCK_MARK = ".appshelf-lock-"
# What `appshelf init` puts in .gitignore: every name the writer may leave beside the output.
IGNORED_NAMES = (f"{TEMP_MARK}*", f"{JOURNAL_MARK}*", f"{LOCK_MARK}*", f"{OLD_MARK}*")

_JOURNAL_LIMIT = 256 << 20  # a journal of 2,000,000 paths is well under this
_PATH_LIMIT = 4096
_SEGMENT = re.compile(r"[^/\x00]{1,255}")


@dataclass(frozen=True)
class Names:
    """The housekeeping names of one output folder, all in its parent."""

    target: Path

    @property
    def parent(self) -> Path:
        return self.target.parent

    def staging(self, pid: int | None = None) -> Path:
        return self.parent / f"{TEMP_MARK}{self.target.name}-{os.getpid() if pid is None else pid}"

    def is_staging_name(self, name: str) -> bool:
        pattern = re.escape(f"{TEMP_MARK}{self.target.name}-") + r"[0-9]{1,10}"
        return re.fullmatch(pattern, name) is not None

    @property
    def journal(self) -> Path:
        return self.parent / f"{JOURNAL_MARK}{self.target.name}.json"

    @property
    def journal_temp(self) -> Path:
        return self.parent / f"{JOURNAL_MARK}{self.target.name}.json.tmp"

    @property
    def lock(self) -> Path:
        return self.parent / f"{LOCK_MARK}{self.target.name}"


@dataclass(frozen=True)
class Journal:
    """A commit in progress, as validated: every path is a plain path below the output."""

    staging: Path
    write: list[str]
    remove: list[str]


def _identity(path: Path) -> list[int]:
    info = os.lstat(path)
    return [info.st_dev, info.st_ino]


def _refuse(entry: Path, why: str) -> OutputError:
    return OutputError(
        f"{entry}: {why}, so it is not something appshelf left there; nothing was changed. "
        "Move it away (or delete it) if you do not know what it is, then build again"
    )


def check_plain_path(relpath: str, where: Path) -> str:
    """A relative output path with no empty, `.` or `..` segment and no NUL.

    Raises:
        OutputError: naming `where` and the path.
    """
    segments = relpath.split("/")
    if (
        not isinstance(relpath, str)
        or len(relpath) > _PATH_LIMIT
        or any(s in (".", "..") or _SEGMENT.fullmatch(s) is None for s in segments)
    ):
        raise OutputError(f"{where}: names a path outside the output: {relpath!r}")
    return relpath


def write_journal(names: Names, staging: Path, order: list[str], removed: list[str]) -> Path:
    """Write the commit's journal (temp name, fsync, rename, fsync the folder)."""
    data = json.dumps(
        {
            "staging": staging.name,
            "staging_id": _identity(staging),
            "target_id": _identity(names.target),
            "write": order,
            "remove": removed,
        }
    ).encode()
    temp = names.journal_temp
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(temp, names.journal)
    fsync_dir(names.parent)
    return names.journal


def read_journal(names: Names) -> Journal | None:
    """The journal of an interrupted commit of this output, or None when there is none.

    Raises:
        OutputError: the journal is not one appshelf wrote for this output as it is now
            (a link, not a regular file, unreadable, a staging folder other than the
            derived one, a device/inode that does not match, a path outside the output).
    """
    path = names.journal
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, "is a link or not a regular file")
    if info.st_size > _JOURNAL_LIMIT:
        raise _refuse(path, f"is larger than any journal appshelf writes ({info.st_size} bytes)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            plan = json.loads(handle.read(_JOURNAL_LIMIT + 1))
        staging_name = plan["staging"]
        staging_id, target_id = plan["staging_id"], plan["target_id"]
        write, remove = plan["write"], plan["remove"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise _refuse(path, f"cannot be read as a journal ({type(exc).__name__})") from None
    if not isinstance(staging_name, str) or not names.is_staging_name(staging_name):
        raise _refuse(path, f"names a staging folder appshelf never uses ({staging_name!r})")
    staging = names.parent / staging_name
    if not (isinstance(write, list) and isinstance(remove, list)):
        raise _refuse(path, "has no list of files to write and remove")
    _check_identity(path, names.target, target_id, "output folder")
    _check_identity(path, staging, staging_id, "staging folder")
    order = [check_plain_path(p, path) for p in write]
    removed = [check_plain_path(p, path) for p in remove]
    return Journal(staging=staging, write=order, remove=removed)


def _check_identity(journal: Path, folder: Path, recorded: object, what: str) -> None:
    try:
        info = os.lstat(folder)
    except OSError:
        raise _refuse(journal, f"names the {what} {folder.name}, which is not there") from None
    if not stat.S_ISDIR(info.st_mode):
        raise _refuse(journal, f"names the {what} {folder.name}, which is not a real folder")
    if recorded != [info.st_dev, info.st_ino]:
        raise _refuse(journal, f"was written for another {what} than {folder.name}")


def check_staged(staging: Path, order: list[str]) -> None:
    """Every staged file still to move is a regular file reached through real folders.

    Raises:
        OutputError: a link or another kind of file inside the staging folder.
    """
    for relpath in order:
        entry = staging / relpath
        kind = _lkind(entry, staging)
        if kind is None:
            continue  # moved before the interruption
        if kind != "file":
            raise _refuse(entry, f"is a {kind} in a staging folder")


def _lkind(path: Path, root: Path) -> str | None:
    """'file', 'folder', 'link', 'special' for `path` below `root`, checking every folder
    on the way with lstat; None when it (or a folder on the way) does not exist."""
    current = root
    parts = path.relative_to(root).parts
    for index, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            return "link"
        last = index == len(parts) - 1
        if not last and not stat.S_ISDIR(mode):
            return None if stat.S_ISREG(mode) else "special"
        if last:
            if stat.S_ISREG(mode):
                return "file"
            return "folder" if stat.S_ISDIR(mode) else "special"
    return "folder"


def make_folders(target: Path, folder: str) -> None:
    """mkdir each segment of `folder` below `target`, never through a link: a link in the
    way (appshelf writes none) is unlinked, which touches nothing it points at."""
    current = target
    for part in folder.split("/"):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            os.mkdir(current)
            continue
        if stat.S_ISLNK(mode):
            os.unlink(current)
            os.mkdir(current)
        elif not stat.S_ISDIR(mode):
            raise OSError(errno.ENOTDIR, f"{current} is in the way of a folder")


def remove_entry(target: Path, relpath: str) -> None:
    """Remove one output entry (file, link or special file; a folder in the way of a file
    is removed whole, without following links), never through a linked folder."""
    parent = target
    for part in relpath.split("/")[:-1]:
        parent = parent / part
        try:
            mode = os.lstat(parent).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(mode):
            return  # a link or a file where a folder was: nothing of ours below it
    entry = parent / relpath.rsplit("/", 1)[-1]
    try:
        mode = os.lstat(entry).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(entry)
    else:
        os.unlink(entry)


def clean_leftovers(names: Names) -> None:
    """Delete staging folders of killed builds and a stray journal temp; refuse anything
    else that carries a housekeeping name of this output.

    Raises:
        OutputError: a link or file where appshelf would have left a folder (or the other
            way round), or an `.appshelf-old-` folder (older appshelf versions swapped whole
            folders; restoring one would mean trusting a folder found on disk).
    """
    parent = names.parent
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith(f"{TEMP_MARK}{names.target.name}-"):
            if not names.is_staging_name(entry.name) or not entry.is_dir(follow_symlinks=False):
                raise _refuse(path, "has the name of a staging folder but is not a real folder")
            shutil.rmtree(path)  # fd-based: links inside are unlinked, never followed
        elif entry.name.startswith(f"{OLD_MARK}{names.target.name}-"):
            raise _refuse(path, "has the name of a folder only appshelf 0.0 left behind")
        elif entry.name == names.journal_temp.name:
            if not entry.is_file(follow_symlinks=False):
                raise _refuse(path, "has the name of a journal being written but is not a file")
            os.unlink(path)


def check_output_entry(target: Path) -> None:
    """The output itself must be a real folder (or absent): never a link.

    Raises:
        OutputError: the output is a link or a special file.
    """
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise OutputError(
            f"{target}: is a symbolic link; appshelf writes the output only into a real "
            "folder (give the folder the link points at, if that is what you meant)"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{target}: exists and is not a folder")


@contextmanager
def output_lock(target: Path) -> Iterator[None]:
    """Hold `.appshelf-lock-<name>` beside the output for the whole build, so that two
    builds of one output stop cleanly instead of interleaving their housekeeping.

    Raises:
        OutputError: another process holds the lock, or the lock file is not a regular file.
    """
    names = Names(target.absolute())
    names.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(names.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(names.lock, "is a symbolic link") from None
        raise OutputError(f"{names.lock}: cannot create the lock file ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _refuse(names.lock, "is not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"{target}: another appshelf build is writing this output (it holds "
                f"{names.lock.name}); wait for it to finish, then build again"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock; the file stays (removing it races)
