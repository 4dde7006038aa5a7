"""Which content-addressed copies in a built folder belong to its own snapshot.

A build keeps the previous snapshot's copies for one more build (docs/spec.md section 8),
so two builds of the same source can differ only in those: comparisons of a folder with
a reference (or a cold build) use `current_files`, which leaves them out.
"""

from __future__ import annotations

import json
from pathlib import Path

from appshelf.formats.consistent import consistent_path, plain_path
from appshelf.formats.log import tiles_for


def pinned_copies(files: dict[str, bytes]) -> set[str]:
    """The copies the folder's own snapshot pins (its index files and their manifests),
    and the log tiles of its log size."""
    snapshot = files.get("snapshot.json")
    if snapshot is None:
        return set()
    signed = json.loads(snapshot)["signed"]
    meta = signed["meta"]
    wanted = {consistent_path(path, pin["sha256"]) for path, pin in meta.items()}
    wanted |= {ref.path for ref in tiles_for(signed["log"]["size"] if "log" in signed else 0)}
    for path in meta:
        if path.endswith("/app.json") and path in files:
            for entry in json.loads(files[path])["versions"]:
                wanted.add(consistent_path(entry["manifest_path"], entry["manifest"]["sha256"]))
    return wanted


def current_generation(files: dict[str, bytes]) -> dict[str, bytes]:
    """`files` without the copies its snapshot does not pin (the previous snapshot's)."""
    wanted = pinned_copies(files)
    return {p: v for p, v in files.items() if p in wanted or not _previous_kind(p)}


def _previous_kind(relpath: str) -> bool:
    """A kind of file a build keeps for the previous snapshot."""
    return plain_path(relpath) is not None or (relpath.startswith("log/tile/") and ".p/" in relpath)


def current_files(root: Path, skip: frozenset[str] = frozenset()) -> dict[str, bytes]:
    """Every regular file under `root` but `skip` and the previous snapshot's copies."""
    files = {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
    return {p: v for p, v in current_generation(files).items() if p not in skip}


def read_name(root: Path, relpath: str) -> str:
    """Where a client reads the pinned file `relpath` of the registry in `root`: its
    content-addressed copy when the snapshot is consistent (docs/spec.md 4.1.1), so a
    test that tampers with what a client is served tampers with that file."""
    signed = json.loads((root / "snapshot.json").read_bytes())["signed"]
    if not signed.get("consistent"):
        return relpath
    meta = signed["meta"]
    if relpath in meta:
        return consistent_path(relpath, meta[relpath]["sha256"])
    app = relpath.split("/")[1]
    app_json = root / read_name(root, f"apps/{app}/app.json")
    for entry in json.loads(app_json.read_bytes())["versions"]:
        if entry["manifest_path"] == relpath:
            return consistent_path(relpath, entry["manifest"]["sha256"])
    raise KeyError(relpath)


def served(root: Path, relpath: str) -> Path:
    """The file a client reads for the pinned `relpath` (see `read_name`)."""
    return root / read_name(root, relpath)
