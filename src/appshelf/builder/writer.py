"""Write an output folder safely, rewriting nothing that did not change.

A first build writes the whole tree into a temporary sibling folder and renames it
into place: one atomic step.

Later builds stage only the files that change, in a temporary sibling folder
(`.appshelf-tmp-<name>-<pid>`), so the cost follows the change, not the registry's size
(hard-linking 300,000 unchanged files into a fresh tree took seconds). Once every
changed file is staged, a journal (`.appshelf-journal-<name>.json`, written to a temp
name, fsynced, renamed) lists the renames to do, and the commit moves each staged file
over its target with rename(2), in the order that keeps the published graph valid for
a reader: artifacts and manifests first, then per-app indexes, then the top-level
indexes, `snapshot.json` last; files that are no longer planned are removed after it.
- Killed or failed while staging: there is no journal; the output was never touched
  and the next build deletes the staging folder.
- Killed while committing: the journal is there; the next build (or
  `recover_interrupted`) first rolls the commit forward from the staged files, which
  are complete by then, and only then plans. A deploy step should call it too.
- Nothing changed: nothing is staged, no journal, no file touched (mtimes kept).

Which files changed is decided without reading them when the cache (builder/cache.py)
has a row whose stat key matches the file on disk and whose digest is the planned one;
otherwise the bytes are compared (artifacts: the earlier index's digest and size).
Files appshelf did not write are left alone when the cache knows what it wrote; when
it does not (first build with a cache, lost cache), the folder is walked and anything
not planned is removed, as the folder belongs to the build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from appshelf.builder.cache import (
    KEPT_TOKEN,
    BuildCache,
    Record,
    StatKey,
    parallel_map,
    stat_key,
)
from appshelf.builder.housekeeping import (
    Names,
    check_output_entry,
    check_staged,
    clean_leftovers,
    make_folders,
    read_journal,
    remove_entry,
    write_journal,
)
from appshelf.builder.outputs import MAX_PAGE_BYTES, OutputFile, OutputFiles
from appshelf.builder.previous import FolderSource
from appshelf.errors import OutputError
from appshelf.filestat import stat_line
from appshelf.formats.consistent import plain_path

_COPY_CHUNK = 1 << 20
_STAGE_BATCH = 4096  # files rendered, then written, at a time
_ROOT_RECORD = "."  # the outputs table row naming which folder the rows describe
_TOP_LEVEL = ("registry.json", "index.json", "keys.json")
_SNAPSHOT = "snapshot.json"
_BINS_DIR = "bins/"
_TUF_DIR = "tuf/"
_TUF_TIMESTAMP = "tuf/timestamp.json"


@dataclass(frozen=True)
class WriteStats:
    written: int
    unchanged: int
    removed: int
    # Each file's stat key as now on disk, as a line (`filestat.stat_line`).
    stat_lines: dict[str, bytes] = field(default_factory=dict, repr=False)
    kept: frozenset[str] = frozenset()  # no longer planned, left for the previous snapshot

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def commit_rank(relpath: str) -> int:
    """Commit order: what the snapshot pins must already be in place; the TUF metadata
    (`tuf/`, whose targets include snapshot.json) after it, its timestamp last."""
    if relpath == _TUF_TIMESTAMP:
        return 5
    if relpath.startswith(_TUF_DIR):
        return 4
    if relpath == _SNAPSHOT:
        return 3
    if relpath in _TOP_LEVEL or relpath.startswith(_BINS_DIR):  # bins pin per-app files
        return 2
    if relpath.startswith("apps/") and relpath.count("/") == 2 and relpath.endswith(".json"):
        return 1
    return 0


def _same_bytes(existing: Path, planned: OutputFile, known_sha256: str | None) -> bool:
    """Is the file already there with these bytes? Artifacts trust the earlier index's
    digest (plus size) instead of re-reading gigabytes; everything else is compared."""
    try:
        info = os.lstat(existing)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size != planned.size:
        return False  # a link or a special file is never what appshelf wrote
    if planned.data is None:
        return known_sha256 == planned.sha256
    try:
        fd = os.open(existing, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(planned.size + 1) == planned.data
    except OSError:
        return False


def _existing_files(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    found: set[str] = set()
    for folder, dirnames, filenames in os.walk(root):
        base = Path(folder).relative_to(root)
        found.update((base / name).as_posix() for name in filenames)
        # A link to a folder is listed (so it is removed), never walked into.
        links = [d for d in dirnames if os.path.islink(os.path.join(folder, d))]
        found.update((base / name).as_posix() for name in links)
        dirnames[:] = [d for d in dirnames if d not in links]
    return found


def _stat_keys(root: Path, relpaths: list[str]) -> list[StatKey | None]:
    """lstat() many files; the syscalls overlap in threads (they release the GIL)."""

    def one(relpath: str) -> StatKey | None:
        try:
            return stat_key(os.lstat(f"{root}/{relpath}"))
        except OSError:
            return None

    return parallel_map(one, relpaths)


def write_tree(
    files: OutputFiles,
    target: Path,
    known_digests: Mapping[str, str] | None = None,
    cache: BuildCache | None = None,
    verified: set[str] | None = None,
    reused_apps: Collection[str] = (),
    keep: Callable[[str], bool] = lambda relpath: False,
    spool: Spool | None = None,
) -> WriteStats:
    """Make `target` hold exactly `files` and the `verified` paths; return what it took.
    `verified` paths (all files of `reused_apps`, builder/memo.py) were just checked by
    the caller against their stat keys as written: they stay as they are, unread, and
    need not be in `files`. Files no longer planned for which `keep` says True (the
    previous snapshot's content-addressed files, builder/consistent.py) are left too.
    Files already given to `spool` (staged early, one app at a time) are not looked at
    again; a spool brings its own cache, known digests and reused apps (the arguments
    of that name are then not read), and must have been opened on `target`."""
    verified = verified or set()
    cache = cache or BuildCache(None)
    if spool is None:
        spool = Spool(target, cache, known_digests, reused_apps)
    try:
        spool.add(files, [p for p in files if p not in verified and p not in spool.seen])
        spool.flush()
    except BaseException:
        spool.discard()
        raise
    return spool.commit(files, verified, keep)


class Spool:
    """The writer's first half, fed files as they are planned (one app's at a time):
    which files already hold their bytes, and the staging of the others, a few thousand
    files at a time (`_STAGE_BATCH`: the writes of a batch overlap in threads). A staged
    or unchanged file keeps only its digest, so a build holds every file's digest, never
    every file's bytes or every page's inputs (issue 12, decision 4). `commit` is the
    second half: nothing in the output is touched before it, and `discard` (or the next
    build, after a kill) removes what was staged."""

    def __init__(
        self,
        target: Path,
        cache: BuildCache,
        known_digests: Mapping[str, str] | None = None,
        reused_apps: Collection[str] = (),
    ) -> None:
        """Open the output for writing: finish a killed build's commit, clean leftovers.

        Args:
            target: the output folder.
            cache: the build cache (what was written there, by stat key).
            known_digests: output paths of earlier artifacts -> sha256, not read again.
            reused_apps: apps whose files the caller verified (their rows are not loaded).

        Raises:
            OutputError: the output or a leftover beside it is not what appshelf wrote.
        """
        self.target = target.absolute()
        self.names = Names(self.target)
        self.cache = cache
        self.known: Mapping[str, str] = known_digests if known_digests is not None else {}
        check_output_entry(self.target)
        recover_interrupted(self.target)
        clean_leftovers(self.names)
        self._output = FolderSource(self.target)
        self.fresh = not self.target.exists()
        self.records = None if self.fresh else output_records(cache, self.target, set(reused_apps))
        self.seen: set[str] = set()  # every path added
        self.staged: list[str] = []  # the changed ones, in the staging folder
        self.unchanged: set[str] = set()
        self.lines: dict[str, bytes] = {}  # stat lines of the unchanged the cache vouched for
        self.confirmed: list[str] = []  # unchanged, found so by reading them
        self._staging: Path | None = None
        self._pending: list[tuple[OutputFiles, list[str]]] = []
        self._pending_count = 0

    def add(self, files: OutputFiles, paths: Iterable[str]) -> None:
        """Take `paths` of `files`: those the output does not already hold are staged
        (once a batch is full, or on `flush`). Afterwards each of these entries of
        `files` holds its digest only (an unchanged page that was never rendered reads
        its bytes back from the output, if ever asked for).

        Raises:
            OutputError: a file cannot be staged (the staging folder is removed).
        """
        paths = sorted(paths)
        self.seen.update(paths)
        self._pending.append((files, paths))
        self._pending_count += len(paths)
        if self._pending_count >= _STAGE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Stage what was added and not staged yet.

        Raises:
            OutputError: a file cannot be staged (the staging folder is removed).
        """
        pending, self._pending, self._pending_count = self._pending, [], 0
        for files, paths in _merged(pending):
            self._settle(files, paths)

    def _settle(self, files: OutputFiles, paths: list[str]) -> None:
        changed = paths
        if not self.fresh:
            unchanged, lines, confirmed = _find_unchanged(
                files, self.target, paths, self.records, self.known
            )
            self.unchanged |= unchanged
            self.lines.update(lines)
            self.confirmed += confirmed
            changed = [p for p in paths if p not in unchanged]
            for path in unchanged:
                files[path] = _settled(files[path], self._output, path)
        if changed:
            _stage_changes(files, changed, self._staging_folder(), self.target)
            self.staged += changed

    def _staging_folder(self) -> Path:
        if self._staging is None:
            staging = self.names.staging()
            staging.parent.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
            self._staging = staging
        return self._staging

    def discard(self) -> None:
        """Remove what was staged: the build stops before its commit."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def commit(
        self, files: OutputFiles, verified: set[str], keep: Callable[[str], bool]
    ) -> WriteStats:
        """Move the staged files into place (journaled, in reader-safe order), remove the
        files no longer planned (except those `keep` leaves), and remember what is there.
        Every path of `files` not in `verified` must have been added.

        Raises:
            OutputError: the output cannot be updated (a journal lets the next build
                finish what was begun).
        """
        self.flush()
        if self.fresh:
            return self._commit_fresh(files)
        target, cache, records = self.target, self.cache, self.records
        gone = _no_longer_planned(files, target, records, verified)
        left, removed = _split_gone(gone, keep, cache, target, records)
        kept = len(self.unchanged) + len(verified)
        # Known to hold their bytes only by writing or reading them: remember them.
        to_remember = sorted(self.seen) if records is None else self.staged + self.confirmed
        lines = self.lines  # the spool ends here: no copy of a dict of every unchanged file
        if not self.staged and not removed:
            self.discard()
            if self.confirmed or records is None:
                lines.update(_remember(cache, target, files, to_remember))
            return WriteStats(written=0, unchanged=kept, removed=0, stat_lines=lines, kept=left)
        staging = self._staging_folder()
        order = sorted(self.staged, key=lambda p: (commit_rank(p), p))
        journal = write_journal(self.names, staging, order, removed)
        self._staging = None  # the journal owns it now: the commit rolls forward from it
        _commit_changes(target, staging, order, removed, journal)
        cache.forget("outputs", removed)
        lines.update(_remember(cache, target, files, to_remember))
        return WriteStats(
            written=len(self.staged),
            unchanged=kept,
            removed=len(removed),
            stat_lines=lines,
            kept=left,
        )

    def _commit_fresh(self, files: OutputFiles) -> WriteStats:
        """No output yet: the staging folder is the whole tree; rename it into place."""
        self.cache.forget("outputs")
        staging = self._staging_folder()
        try:
            os.rename(staging, self.target)
        except OSError as exc:
            self.discard()
            raise OutputError(
                f"{self.target}: cannot write the output ({exc.strerror or exc}); nothing "
                "was written"
            ) from None
        self._staging = None
        lines = _remember(self.cache, self.target, files, sorted(files))
        return WriteStats(written=len(files), unchanged=0, removed=0, stat_lines=lines)


def _merged(
    pending: list[tuple[OutputFiles, list[str]]],
) -> list[tuple[OutputFiles, list[str]]]:
    """The pending batches, one per mapping (a build adds them all from its plan's)."""
    merged: dict[int, tuple[OutputFiles, list[str]]] = {}
    for files, paths in pending:
        merged.setdefault(id(files), (files, []))[1].extend(paths)
    return list(merged.values())


def _settled(planned: OutputFile, output: FolderSource, relpath: str) -> OutputFile:
    """An unchanged file's entry once decided: its digest only; a page never rendered
    keeps its fingerprint and reads back the bytes the output holds (the cache vouched
    that they are what rendering would give)."""
    if planned.is_lazy:
        assert planned.fingerprint is not None
        return OutputFile.lazy(planned.fingerprint, partial(_read_back, output, relpath))
    return planned.without_bytes()


def _read_back(output: FolderSource, relpath: str) -> bytes:
    """A written page's bytes, read as any output file is (no link followed, regular
    files only, bounded).

    Raises:
        OutputError: the file is gone, or is not what a page can be.
    """
    data = output.read(relpath, MAX_PAGE_BYTES)
    if data is None:
        raise OutputError(
            f"{output.root / relpath}: an output file changed while the build was running; "
            "run the build again. The previous output is unchanged"
        )
    return data


def _find_unchanged(
    files: OutputFiles,
    target: Path,
    to_check: list[str],
    records: dict[str, Record] | None,
    known: Mapping[str, str],
) -> tuple[set[str], dict[str, bytes], list[str]]:
    """Which of `to_check` already hold their planned bytes: by the cache's row when its
    stat key and token match (no read), else by comparing bytes. Returns the unchanged
    paths, the stat lines of those the cache vouched for, and those confirmed by reading
    (to remember)."""
    unchanged: set[str] = set()
    lines: dict[str, bytes] = {}
    confirmed: list[str] = []
    for path, key in zip(to_check, _stat_keys(target, to_check), strict=True):
        if key is None:
            continue
        record = records.get(path) if records is not None else None
        if record is not None and record.key == key and record.sha256 == files[path].cache_token:
            unchanged.add(path)
            lines[path] = stat_line(key)
            continue
        files[path] = files[path].materialize()  # a lazy file is rendered only now
        if _same_bytes(target / path, files[path], known.get(path)):
            unchanged.add(path)
            confirmed.append(path)
    return unchanged, lines, confirmed


def _no_longer_planned(
    files: OutputFiles, target: Path, records: dict[str, Record] | None, verified: set[str]
) -> set[str]:
    """Files in `target` that are neither planned nor verified: the ones the cache says
    appshelf wrote, or, when it cannot say, everything found in the folder."""
    if records is not None:
        return {p for p in set(records) - set(files) - verified if (target / p).exists()}
    return _existing_files(target) - set(files) - verified


def _split_gone(
    gone: set[str],
    keep: Callable[[str], bool],
    cache: BuildCache,
    target: Path,
    records: dict[str, Record] | None,
) -> tuple[frozenset[str], list[str]]:
    """Split the files no longer planned into those `keep` leaves (recorded as kept in
    the cache unless they already are) and those to remove, sorted."""
    left = frozenset(p for p in gone if keep(p))
    removed = sorted(gone - left)
    _remember_left(cache, target, [p for p in left if not _kept_row(records, p)])
    return left, removed


def _stage_changes(files: OutputFiles, changed: list[str], staging: Path, target: Path) -> None:
    """Stage the changed files; on failure remove the staging folder (the output was
    never touched)."""
    try:
        _stage(files, changed, staging)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(
            f"{target}: cannot write the output ({exc.strerror or exc}); the previous "
            "output is unchanged"
        ) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _commit_changes(
    target: Path, staging: Path, order: list[str], removed: list[str], journal: Path
) -> None:
    """Commit the staged files once the journal is written; a failure leaves the journal
    for the next build to roll forward."""
    try:
        _commit(target, staging, order, removed, journal)
    except OSError as exc:
        raise OutputError(
            f"{target}: the output was being updated when {exc.strerror or exc}; the "
            f"journal {journal.name} lets the next build finish the update"
        ) from None


def output_records(
    cache: BuildCache, target: Path, skip_apps: set[str] | None = None
) -> dict[str, Record] | None:
    """What the cache says the writer last put in `target` (relpath -> stat key and
    token), leaving out the files of `skip_apps`; None when the rows describe some
    other folder (or there are none), so the cache cannot say what is there."""
    records = cache.load("outputs", skip_apps or ())
    root_record = records.pop(_ROOT_RECORD, None)
    try:
        root_stat = target.stat()
    except OSError:
        return None
    if root_record is None or root_record.key[2::2] != (root_stat.st_ino, root_stat.st_dev):
        return None  # rows about some other folder: trust none, walk instead
    return records


def _remember(
    cache: BuildCache, target: Path, files: OutputFiles, paths: Iterable[str]
) -> dict[str, bytes]:
    """Record the stat key of files now known to hold their planned bytes; return their
    stat lines. A batch at a time: a fresh build remembers every output file (4.5 a
    version), and held as keys they were the largest thing its peak memory gained at the
    end (issue 12). A row stored alone is as good as any: a build killed between two
    batches finds the others missing, and reads those files to compare."""
    paths = list(paths)
    cache.store("outputs", [(_ROOT_RECORD, stat_key(target.stat()), "")])
    lines: dict[str, bytes] = {}
    for start in range(0, len(paths), _STAGE_BATCH):
        batch = paths[start : start + _STAGE_BATCH]
        keys = zip(batch, _stat_keys(target, batch), strict=True)
        found = [(p, k) for p, k in keys if k is not None]
        cache.store("outputs", [(p, k, files[p].cache_token) for p, k in found])
        lines.update((p, stat_line(k)) for p, k in found)
    return lines


def _kept_row(records: dict[str, Record] | None, relpath: str) -> bool:
    record = records.get(relpath) if records is not None else None
    return record is not None and record.sha256.startswith(KEPT_TOKEN)


def _remember_left(cache: BuildCache, target: Path, left: Collection[str]) -> None:
    """Record the files kept for the previous snapshot as kept (the cache loads those rows
    even for apps it reuses), so the build that may remove them finds them."""
    paths = sorted(left)
    rows = [
        (p, k, KEPT_TOKEN + named[1])
        for p, k in zip(paths, _stat_keys(target, paths), strict=True)
        if k is not None and (named := plain_path(p)) is not None
    ]
    if rows:
        cache.store("outputs", rows)


def _stage(files: OutputFiles, paths: list[str], staging: Path) -> None:
    folders = sorted({str(Path(p).parent) for p in paths} - {"."})
    for folder in folders:
        (staging / folder).mkdir(parents=True, exist_ok=True)

    # Lazy files (generators' pages) are rendered only now, a batch at a time in this
    # thread (rendering holds the GIL), and only their digest is kept once written: a
    # large site is never all in memory at once. The writes of a batch overlap in
    # threads (open/write/close release the GIL).
    for start in range(0, len(paths), _STAGE_BATCH):
        batch = paths[start : start + _STAGE_BATCH]
        rendered = [(path, files[path].materialize()) for path in batch]
        parallel_map(lambda item: _write_file(item[1], staging / item[0]), rendered)
        for path, planned in rendered:
            files[path] = planned.without_bytes()


def _write_file(planned: OutputFile, destination: Path) -> None:
    if planned.data is not None:
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(planned.data)
    elif planned.source is None:  # reused from the last build, but no longer on disk
        raise OutputError(
            f"{destination.name}: an output file changed while the build was running; "
            "run the build again. The previous output is unchanged"
        )
    else:
        _copy_verified(planned.source, destination, planned.sha256, planned.size)


def _copy_verified(source: Path, destination: Path, sha256: str, size: int) -> None:
    """Copy an artifact and hash the bytes actually copied: an artifact edited between
    hashing and copying must not be published under the digest the manifest signs."""
    digest = hashlib.sha256()
    copied = 0
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with source.open("rb") as reader, os.fdopen(fd, "wb") as writer:
        while chunk := reader.read(_COPY_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            copied += len(chunk)
    if copied != size or digest.hexdigest() != sha256:
        raise OutputError(
            f"{source}: changed while the build was running (hashed sha256:{sha256}, "
            f"{size} bytes; copied sha256:{digest.hexdigest()}, {copied} bytes); run the "
            "build again once the file is final. The previous output is unchanged"
        )


def _commit(
    target: Path, staging: Path, order: list[str], removed: list[str], journal: Path
) -> None:
    """Idempotent: rolling forward again after a kill redoes only what is left."""
    made: set[str] = set()
    for relpath in order:
        source = staging / relpath
        if not os.path.lexists(source):
            continue  # moved before an interruption
        folder = relpath.rpartition("/")[0]
        if folder and folder not in made:
            make_folders(target, folder)
            made.add(folder)
        destination = target / relpath
        if os.path.isdir(destination) and not os.path.islink(destination):
            shutil.rmtree(destination)  # a folder where a file now goes
        os.replace(source, destination)
    for relpath in removed:
        remove_entry(target, relpath)
        _prune_empty((target / relpath).parent, target)
    journal.unlink()
    shutil.rmtree(staging, ignore_errors=True)


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def recover_interrupted(target: Path) -> bool:
    """Finish a commit that a killed build left half done; True if there was one.

    Raises:
        OutputError: the journal (or its staging folder) is not what appshelf wrote for
            this output (see builder/housekeeping.py); nothing is touched then.
    """
    names = Names(target.absolute())
    check_output_entry(names.target)
    journal = read_journal(names)
    if journal is None:
        return False
    check_staged(journal.staging, journal.write)
    try:
        _commit(names.target, journal.staging, journal.write, journal.remove, names.journal)
    except OSError as exc:
        raise OutputError(
            f"{names.target}: cannot finish the interrupted update ({exc.strerror or exc})"
        ) from None
    return True
