"""The last release log this machine built or saw for an output, kept beside the output.

`.appshelf-cache/<output>.checkpoint` is the last checkpoint (the anchor: the next
published log must extend it) and `.appshelf-cache/<output>.log` its entries (so only
the entries after it are read from a URL or a bucket). Both are hostile input like any
cache: read with size caps, never through links, and believed only as far as they hash
to a checkpoint; a planted anchor can make a build refuse, never accept.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appshelf.builder.cache import CACHE_DIR
from appshelf.errors import LogError, LogFormatError
from appshelf.formats.log import Checkpoint, encode_bundle, parse_note, split_entries
from appshelf.signing.releaselog import LogState, replay

_MAX_LOG = 1 << 30
_MAX_CHECKPOINT = 4096


def _paths(output: Path) -> tuple[Path, Path]:
    folder = output.absolute().parent / CACHE_DIR
    name = output.absolute().name
    return folder / f"{name}.checkpoint", folder / f"{name}.log"


def _read(path: Path, limit: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return handle.read(limit + 1)


def _size(path: Path) -> int | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def load_seen(output: Path) -> tuple[Checkpoint | None, LogState | None]:
    """The anchor checkpoint and, when they still hash to it, its entries.

    The entries are replayed `bound` (every rule, not the canonical re-encoding: that was
    checked when the log first accepted them). Neither the anchor nor the state is
    signed: the state must only be used as `known` in `verify_log`, whose root check
    against the published, signed checkpoint binds the bytes (builder/previous.py).
    """
    checkpoint_path, log_path = _paths(output)
    data = _read(checkpoint_path, _MAX_CHECKPOINT)
    if data is None:
        return None, None
    try:
        checkpoint, _ = parse_note(data)
    except LogFormatError:
        return None, None  # a damaged anchor: this build has none, as on a new machine
    raw = _read(log_path, _MAX_LOG)
    if raw is None:
        return checkpoint, None
    try:
        entries = split_entries(raw)
        state = replay(entries, bound=True)
    except (LogError, LogFormatError, ValueError):
        return checkpoint, None
    if state.size != checkpoint.size or state.root != checkpoint.root:
        return checkpoint, None
    return checkpoint, state


def store_seen(output: Path, checkpoint_note: bytes, state: LogState) -> None:
    """Remember the log just written (temp files, then rename; failures only cost time)."""
    checkpoint_path, log_path = _paths(output)
    folder = checkpoint_path.parent
    length = sum(2 + len(e) for e in state.entries)
    if _read(checkpoint_path, _MAX_CHECKPOINT) == checkpoint_note and _size(log_path) == length:
        return  # already the anchor: rewriting ~600 bytes an entry would only cost time
    try:
        folder.mkdir(exist_ok=True)
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return
        body = encode_bundle(state.entries)
        for path, data in ((log_path, body), (checkpoint_path, checkpoint_note)):
            temp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, path)
    except OSError:
        return
