"""Which content-addressed copies in a built folder belong to its own snapshot.

A build keeps the previous snapshot's copies for one more build (docs/spec.md section 8),
so two builds of the same source can differ only in those: comparisons of a folder with
a reference (or a cold build) use `current_files`, which leaves them out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appshelf.formats.consistent import consistent_path, plain_path
from appshelf.formats.log import tiles_for


def all_pins(signed: dict[str, Any], read: Callable[[str], bytes | None]) -> dict[str, Any]:
    """Every pin of a snapshot body: its `meta`, and the `meta` of each of its bins
    (docs/spec.md 4.8), read by `read` (by the copy's name when it is consistent)."""
    pins = dict(signed["meta"])
    if "bins" not in signed:
        return pins
    for path, pin in signed["meta"].items():
        if path.startswith("bins/"):
            name = consistent_path(path, pin["sha256"]) if signed.get("consistent") else path
            data = read(name)
            if data is not None:
                pins.update(json.loads(data)["meta"])
    return pins


def pinned_copies(files: dict[str, bytes]) -> set[str]:
    """The copies the folder's own snapshot pins (its index files and their manifests),
    and the log tiles of its log size."""
    snapshot = files.get("snapshot.json")
    if snapshot is None:
        return set()
    signed = json.loads(snapshot)["signed"]
    meta = all_pins(signed, files.get)
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
    meta = all_pins(signed, lambda name: _read_or_none(root / name))
    if relpath in meta:
        return consistent_path(relpath, meta[relpath]["sha256"])
    app = relpath.split("/")[1]
    app_json = root / read_name(root, f"apps/{app}/app.json")
    for entry in json.loads(app_json.read_bytes())["versions"]:
        if entry["manifest_path"] == relpath:
            return consistent_path(relpath, entry["manifest"]["sha256"])
    raise KeyError(relpath)


def _read_or_none(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def served(root: Path, relpath: str) -> Path:
    """The file a client reads for the pinned `relpath` (see `read_name`)."""
    return root / read_name(root, relpath)


def repin(root: Path, relpath: str, data: bytes, bump: int = 0) -> None:
    """What a compromised build or signer could publish: `data` at `relpath` (plain name
    and content-addressed copy), validly pinned: in the bin of its app when the snapshot
    has bins (docs/spec.md 4.8, the bin rewritten and repinned too), else in `meta`; the
    snapshot re-signed with the development key, `bump` versions newer."""
    from appshelf.formats.bins import bin_of
    from appshelf.formats.canonical import canonical_json, sha256_hex
    from appshelf.signing.envelope import sign_body
    from appshelf.signing.keys import development_key

    body = json.loads((root / "snapshot.json").read_bytes())["signed"]
    where = bin_of(relpath, body["bins"]["bits"]) if "bins" in body else None
    _write_pinned(root, relpath, data)
    pin = {"sha256": sha256_hex(data), "length": len(data)}
    if where is not None:
        old = body["meta"][where]
        binned = json.loads((root / consistent_path(where, old["sha256"])).read_bytes())
        binned["meta"][relpath] = pin
        data = canonical_json(binned)
        _write_pinned(root, where, data)
        relpath, pin = where, {"sha256": sha256_hex(data), "length": len(data)}
    body["meta"][relpath] = pin
    body["version"] += bump
    (root / "snapshot.json").write_bytes(canonical_json(sign_body(body, development_key())))


def _write_pinned(root: Path, relpath: str, data: bytes) -> None:
    from appshelf.formats.canonical import sha256_hex

    (root / relpath).parent.mkdir(parents=True, exist_ok=True)
    (root / relpath).write_bytes(data)
    (root / consistent_path(relpath, sha256_hex(data))).write_bytes(data)  # what it reads
