"""Consistent snapshots: every pinned file also under a name that never changes.

TUF's naming (`<dir>/<sha256 hex>.<basename>`): a snapshot with `consistent: true`
(docs/spec.md section 4.1) promises that each file it pins, and each manifest an app.json
it pins names, is also published under this name, written before the snapshot and
kept while that snapshot or the one after it is current. A reader that fetches pinned
files by it sees one whole build, even while the next one is being published.
"""

from __future__ import annotations

import re

_HASHED = re.compile(r"(?:(?P<dir>.+)/)?(?P<sha>[0-9a-f]{64})\.(?P<name>[^/]+)")


def consistent_path(relpath: str, sha256: str) -> str:
    """The content-addressed name of a pinned file: `apps/k/app.json` with digest `h`
    is `apps/k/<h>.app.json`, `registry.json` is `<h>.registry.json`.

    Args:
        relpath: The file's plain path (section 1.1).
        sha256: Its pinned SHA-256, lowercase hex.

    Returns:
        The path a consistent snapshot publishes it under as well.
    """
    folder, _, name = relpath.rpartition("/")
    return f"{folder}/{sha256}.{name}" if folder else f"{sha256}.{name}"


def plain_path(relpath: str) -> tuple[str, str] | None:
    """The plain path and digest a content-addressed name stands for, or None when
    `relpath` is not one (so garbage collection never mistakes another file for one).

    Args:
        relpath: Any path of the registry.

    Returns:
        (plain path, sha256), or None.
    """
    match = _HASHED.fullmatch(relpath)
    if match is None:
        return None
    folder = match.group("dir")
    plain = f"{folder}/{match.group('name')}" if folder else match.group("name")
    return plain, match.group("sha")
