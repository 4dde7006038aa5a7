"""`keys/*.json` in the source: rotation statements that hand signing to a new key.

Each is an envelope signed by the old and the new key (signing/releaselog.py checks
them); `appshelf rotate-key` writes one. They stay in the tree: the build logs a
statement once, when it first signs with the new key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appshelf.errors import InputFileError, Problem, SourceTreeError
from appshelf.inputfile import read_input_file

ROTATIONS_DIR = "keys"
MAX_STATEMENTS = 100
MAX_STATEMENT_BYTES = 64 << 10


def read_rotations(root: Path) -> list[bytes]:
    """The bytes of every statement in keys/, sorted by file name.

    Raises:
        SourceTreeError: keys/ or a statement is a link or not regular, too large, or
            there are too many.
    """
    return read_statement_folder(root, ROTATIONS_DIR)


def read_statement_folder(root: Path, folder_name: str) -> list[bytes]:
    """The bytes of every `*.json` in the folder `folder_name` (keys/, owners/), by file name.

    Raises:
        SourceTreeError: the folder or a statement is a link or not regular, too large,
            or there are too many.
    """
    folder = root / folder_name
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return []
    if not stat.S_ISDIR(info.st_mode):
        raise SourceTreeError([Problem(folder_name, "", "must be a folder (not a link)")])
    names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    if len(names) > MAX_STATEMENTS:
        raise SourceTreeError(
            [Problem(folder_name, "", f"holds {len(names)} statements; at most {MAX_STATEMENTS}")]
        )
    statements = []
    for name in names:
        where = f"{folder_name}/{name}"
        try:
            fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            raise SourceTreeError([Problem(where, "", f"cannot read ({exc.strerror})")]) from None
        with os.fdopen(fd, "rb") as handle:
            entry = os.fstat(handle.fileno())
            if not stat.S_ISREG(entry.st_mode) or entry.st_size > MAX_STATEMENT_BYTES:
                raise SourceTreeError(
                    [
                        Problem(
                            where,
                            "",
                            f"must be a regular file of at most {MAX_STATEMENT_BYTES} bytes",
                        )
                    ]
                )
            statements.append(handle.read(MAX_STATEMENT_BYTES + 1))
    return statements


TUF_HANDOVER_DIR = "tuf"  # keys/tuf/<N>.root.json: TUF roots signed by the old and new key
MAX_TUF_ROOT_BYTES = 512_000


def tuf_handover_path(version: int) -> str:
    """Where `appshelf rotate-key --tuf-root` writes the TUF root `version`."""
    return f"{ROTATIONS_DIR}/{TUF_HANDOVER_DIR}/{version}.root.json"


def read_tuf_handover(root: Path, version: int) -> bytes | None:
    """The bytes of `keys/tuf/<version>.root.json`, None when there is none.

    Raises:
        SourceTreeError: it (or a folder on the way) is a link or not regular, or too large.
    """
    where = tuf_handover_path(version)
    current = root
    for part in where.split("/")[:-1]:
        current = current / part
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                raise SourceTreeError([Problem(where, "", f"{part} must be a folder (not a link)")])
        except FileNotFoundError:
            return None
    try:
        data, _, _ = read_input_file(root / where, MAX_TUF_ROOT_BYTES)
    except InputFileError as exc:
        if not (root / where).exists() and not (root / where).is_symlink():
            return None
        raise SourceTreeError([Problem(where, "", str(exc))]) from None
    return data
