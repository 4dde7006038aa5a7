"""Write an output folder atomically, rewriting nothing that did not change.

The new tree is assembled in a temporary sibling folder: unchanged files are
hard-linked from the current output (same inode, same mtime), changed ones written.
Only when it is complete is it swapped in, with one atomic `renameat2(RENAME_EXCHANGE)`
where the kernel offers it. A failed or killed build leaves the old output as it was;
when nothing changed there is no swap at all.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from appshelf.build.outputs import OutputFile, OutputFiles
from appshelf.errors import OutputError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_TEMP_MARK = ".appshelf-tmp-"
_OLD_MARK = ".appshelf-old-"


@dataclass(frozen=True)
class WriteStats:
    written: int
    unchanged: int
    removed: int

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def _same(existing: Path, planned: OutputFile, known_sha256: str | None) -> bool:
    """Is the file already there with these bytes? Artifacts trust the earlier index's
    digest (plus size) instead of re-reading gigabytes; everything else is compared."""
    try:
        stat = existing.stat()
    except OSError:
        return False
    if stat.st_size != planned.size:
        return False
    if planned.data is None:
        return known_sha256 == planned.sha256
    try:
        return existing.read_bytes() == planned.data
    except OSError:
        return False


def _existing_files(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    found: set[str] = set()
    for folder, dirnames, filenames in os.walk(root):
        base = Path(folder).relative_to(root)
        found.update((base / name).as_posix() for name in filenames)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(folder, d))]
    return found


def write_tree(
    files: OutputFiles, target: Path, known_digests: dict[str, str] | None = None
) -> WriteStats:
    """Make `target` hold exactly `files`; return what it took."""
    known = known_digests or {}
    target = target.absolute()
    _clean_leftovers(target)
    existing = _existing_files(target)
    unchanged = {
        path
        for path, planned in files.items()
        if path in existing and _same(target / path, planned, known.get(path))
    }
    removed = existing - set(files)
    if len(unchanged) == len(files) and not removed:
        return WriteStats(written=0, unchanged=len(unchanged), removed=0)
    staging = target.parent / f"{_TEMP_MARK}{target.name}-{os.getpid()}"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        made: set[Path] = set()
        for path in sorted(files):
            destination = staging / path
            if destination.parent not in made:
                destination.parent.mkdir(parents=True, exist_ok=True)
                made.add(destination.parent)
            if path in unchanged:
                _link_or_copy(target / path, destination)
            else:
                _write_file(files[path], destination)
        _swap_in(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(
            f"{target}: cannot write the output ({exc.strerror or exc}); the previous "
            "output is unchanged"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WriteStats(
        written=len(files) - len(unchanged), unchanged=len(unchanged), removed=len(removed)
    )


def _write_file(planned: OutputFile, destination: Path) -> None:
    if planned.data is not None:
        destination.write_bytes(planned.data)
    else:
        assert planned.source is not None
        shutil.copyfile(planned.source, destination)
    destination.chmod(0o644)


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(source, destination)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging)  # now holds the old output
        return
    old = target.parent / f"{_OLD_MARK}{target.name}-{os.getpid()}"
    os.rename(target, old)
    os.rename(staging, target)
    shutil.rmtree(old)


def _clean_leftovers(target: Path) -> None:
    """Remove staging folders of killed builds; restore an output caught mid-swap."""
    parent = target.parent
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        if entry.name.startswith(f"{_TEMP_MARK}{target.name}-"):
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f"{_OLD_MARK}{target.name}-"):
            if not target.exists():
                os.rename(entry, target)
            else:
                shutil.rmtree(entry, ignore_errors=True)
