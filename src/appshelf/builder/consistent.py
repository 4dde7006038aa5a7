"""Consistent snapshots in the output folder: the content-addressed copies, and which
of the previous build's copies must stay.

Every file the new snapshot pins, directly or through a bin (and every manifest its
app.json files pin), is planned a second time under `consistent_path`
(formats/consistent.py), so the writer stages and commits it before the snapshot like
any other file. A reader that fetched the previous
snapshot just before the commit still needs that snapshot's copies: they are kept for
one more build (`previous_generation`), and removed by the first build that replaces
the snapshot after that. A build that reuses the snapshot removes none.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pydantic

from appshelf.builder.outputs import OutputFile, OutputFiles
from appshelf.builder.plan import PlannedApp, RegistryPlan
from appshelf.builder.previous import MAX_INDEX_BYTES, SNAPSHOT_FILE, FolderSource
from appshelf.errors import JsonRejectedError, OutputError
from appshelf.formats.bins import pins_through_bins
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.consistent import consistent_path, plain_path
from appshelf.formats.documents import AppDetail, FileDigest, Signed, Snapshot
from appshelf.formats.log import CHECKPOINT, tiles_for

# The previous snapshot is read from disk unverified (it only decides what to keep), so
# every name taken from it must be a plain relative path before it is used as one.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}"
_SAFE_PATH = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")


def _safe(relpath: str) -> bool:
    return bool(_SAFE_PATH.fullmatch(relpath)) and ".." not in relpath.split("/")


def add_pinned_copies(plan: RegistryPlan) -> None:
    """Plan the content-addressed copy of every file the snapshot pins and of every
    manifest; an unchanged app's copies are among its reused files already.

    Raises:
        OutputError: an unchanged app's copy is not on record (never expected: the app
            would have been planned in full).
    """
    assert plan.snapshot is not None
    wanted = [(path, pin.sha256) for path, pin in plan.pinned.items()]
    wanted += [
        (version.entry.manifest_path, version.entry.manifest.sha256)
        for app in plan.apps
        for version in app.versions
    ]
    for relpath, sha256 in wanted:
        copy = consistent_path(relpath, sha256)
        if copy in plan.reused or copy in plan.files:
            continue  # an unchanged app's, or planned with its app (`app_copies`)
        plan.files[copy] = _copy_of(relpath, copy, plan.files[relpath])


def _copy_of(relpath: str, copy: str, planned: OutputFile) -> OutputFile:
    """The content-addressed copy `copy` of `relpath`, planned with its bytes.

    Raises:
        OutputError: the file is planned without its bytes (an unchanged app's file,
            whose copy should have been among its reused files).
    """
    if planned.data is None:
        raise OutputError(f"{relpath}: reused without its content-addressed copy {copy}")
    return OutputFile(planned.sha256, planned.size, data=planned.data)


def app_copies(planned: PlannedApp, files: OutputFiles) -> OutputFiles:
    """An app's content-addressed copies, planned with its other files (in `files`)
    before they are handed on: its app.json and versions.json (every snapshot pins them,
    through a bin) and each manifest (its app.json pins them). `add_pinned_copies` then
    finds them planned."""
    key = planned.source.key
    wanted = [f"apps/{key}/app.json", f"apps/{key}/versions.json"]
    wanted += [version.entry.manifest_path for version in planned.versions]
    copies: OutputFiles = {}
    for relpath in wanted:
        copy = consistent_path(relpath, files[relpath].sha256)
        copies[copy] = _copy_of(relpath, copy, files[relpath])
    return copies


def keep_rule(output: Path, plan: RegistryPlan, snapshot_reused: bool) -> Callable[[str], bool]:
    """Which no-longer-planned files the writer leaves: when the snapshot is reused, every
    content-addressed file (the snapshot before it may still be read); otherwise those
    of the snapshot now in the folder."""
    if snapshot_reused:
        return lambda relpath: plain_path(relpath) is not None or _partial_tile(relpath)
    keep = previous_generation(output, plan)
    return keep.__contains__


def _partial_tile(relpath: str) -> bool:
    return relpath.startswith("log/tile/") and ".p/" in relpath


def previous_generation(output: Path, plan: RegistryPlan) -> set[str]:
    """The content-addressed files of the snapshot now in `output` (about to become the
    previous one), and the partial log tiles of its log size."""
    folder = FolderSource(output, f"the output folder {output}")
    snapshot = _current_snapshot(folder)
    if snapshot is None or not snapshot.consistent:
        return set()
    new_meta = plan.pinned
    keep: set[str] = set()
    for relpath, pin in _with_bins(folder, snapshot).items():
        if not _safe(relpath):
            continue
        copy = consistent_path(relpath, pin.sha256)
        keep.add(copy)
        if relpath.endswith("/app.json") and new_meta.get(relpath) != pin:
            keep |= _manifest_copies(folder, copy)
    if snapshot.log is not None and CHECKPOINT in snapshot.meta:
        keep |= {ref.path for ref in tiles_for(snapshot.log.size)}
    return keep


def _with_bins(folder: FolderSource, snapshot: Snapshot) -> dict[str, FileDigest]:
    """Every file the snapshot pins, directly or through its bins (read by their
    content-addressed names; a bin that cannot be read keeps only its own copy)."""

    def read(relpath: str, pin: FileDigest) -> bytes | None:
        try:
            return folder.read(consistent_path(relpath, pin.sha256), MAX_INDEX_BYTES)
        except OutputError:
            return None

    return pins_through_bins(snapshot, read)[0]


def _current_snapshot(folder: FolderSource) -> Snapshot | None:
    try:
        raw = folder.read(SNAPSHOT_FILE, MAX_INDEX_BYTES)
        if raw is None:
            return None
        return Signed[Snapshot].model_validate(loads_bounded(raw)).signed
    except (OutputError, JsonRejectedError, pydantic.ValidationError):
        return None  # nothing to keep: the build reads (and checks) it separately


def _manifest_copies(folder: FolderSource, app_copy: str) -> set[str]:
    """The manifests a replaced app.json pinned (its own copy names them)."""
    try:
        raw = folder.read(app_copy, MAX_INDEX_BYTES)
        if raw is None:
            return set()
        detail = AppDetail.model_validate(loads_bounded(raw))
    except (OutputError, JsonRejectedError, pydantic.ValidationError):
        return set()
    return {
        consistent_path(entry.manifest_path, entry.manifest.sha256)
        for entry in detail.versions
        if _safe(entry.manifest_path)
    }
