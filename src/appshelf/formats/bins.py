"""Hashed bins (docs/spec.md section 4.8): which bin pins which per-app file (pure).

A snapshot that pinned two files per app grew by ~240 bytes an app, and every client
command downloads it. With bins, the snapshot pins the registry-wide files and 2^bits
bin files; bin `p` pins the per-app files of the apps whose name hashes to `p`. A client
fetching one app reads the snapshot and one bin, both growing as sqrt(apps) (PEP 458's
hashed bins, with the bin count derived from the number of apps).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Final, TypeVar

from pydantic import ValidationError

from appshelf.errors import JsonRejectedError
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import MAX_BIN_BITS, BinDocument, FileDigest, Snapshot

BINS_DIR: Final = "bins"
# The per-app files a bin pins, and the name each is binned by: an app's app.json and
# versions.json by its key; the Calimero mirror's per-package files by the package id.
_PER_APP: Final = (
    re.compile(r"apps/(?P<name>[a-z0-9][a-z0-9_-]{0,63})/(?:app|versions)\.json"),
    re.compile(
        r"v1/apps/(?P<name>[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)*)/index\.(?:json|html)"
    ),
)
_BIN_PATH: Final = re.compile(rf"{BINS_DIR}/(?P<prefix>[0-9a-f]{{1,4}})\.json")
PinT = TypeVar("PinT")


def bits_for(names: int) -> int:
    """The builder's rule: the smallest `bits` with 2^bits >= sqrt(names) (0 for one app
    or none), so the snapshot (2^bits pins) and each bin (names / 2^bits apps) both grow
    as sqrt(names); at most MAX_BIN_BITS.

    Args:
        names: How many distinct names (app keys, package ids) the bins hold.

    Returns:
        The number of bits of SHA-256 that pick a bin.
    """
    bits = 0
    while bits < MAX_BIN_BITS and 4**bits < names:
        bits += 1
    return bits


def bin_index(name: str, bits: int) -> int:
    """The bin of a name: the top `bits` bits of SHA-256(UTF-8 name), as an integer.

    Args:
        name: An app key or a Calimero package id.
        bits: The snapshot's `bins.bits` (0 to 16).

    Returns:
        An integer from 0 to 2^bits - 1.
    """
    top = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:2], "big")
    return top >> (MAX_BIN_BITS - bits)


def bin_prefix(index: int, bits: int) -> str:
    """A bin's `prefix`: `index` in lowercase hex, ceil(bits / 4) digits (at least one)."""
    return f"{index:0{max(1, -(-bits // 4))}x}"


def bin_path(index: int, bits: int) -> str:
    """Where bin `index` lives: `bins/<prefix>.json` (`bins/0.json` when bits is 0)."""
    return f"{BINS_DIR}/{bin_prefix(index, bits)}.json"


def all_bin_paths(bits: int) -> list[str]:
    """Every bin path a snapshot with `bins.bits = bits` pins, in order."""
    return [bin_path(index, bits) for index in range(1 << bits)]


def is_bin_path(relpath: str) -> bool:
    """True for a path of the `bins/<prefix>.json` form (any width)."""
    return _BIN_PATH.fullmatch(relpath) is not None


def binned_name(relpath: str) -> str | None:
    """The name a per-app file is binned by, or None when the snapshot pins it itself.

    Args:
        relpath: A pinned path, e.g. `apps/hello/app.json`.

    Returns:
        `hello` for `apps/hello/app.json` and `apps/hello/versions.json`, the package
        id for `v1/apps/<id>/index.json` and `index.html`; None for any other path.
    """
    for pattern in _PER_APP:
        match = pattern.fullmatch(relpath)
        if match is not None:
            return match.group("name")
    return None


def bin_of(relpath: str, bits: int) -> str | None:
    """The bin path that pins `relpath`, or None when the snapshot pins it directly."""
    name = binned_name(relpath)
    return None if name is None else bin_path(bin_index(name, bits), bits)


def split_pins(
    pins: Mapping[str, PinT], bits: int
) -> tuple[dict[str, PinT], dict[str, dict[str, PinT]]]:
    """Split every pinned file into those the snapshot pins and those of each bin.

    Args:
        pins: Path -> pin of every file to pin.
        bits: The bin bits (`bits_for` the number of `names_in(pins)`, for a build).

    Returns:
        (registry-wide pins, bin path -> its pins), with every bin of the range present
        (an empty bin too: it proves that no app of its range exists).
    """
    top: dict[str, PinT] = {}
    bins: dict[str, dict[str, PinT]] = {path: {} for path in all_bin_paths(bits)}
    for path, pin in pins.items():
        where = bin_of(path, bits)
        if where is None:
            top[path] = pin
        else:
            bins[where][path] = pin
    return top, bins


def names_in(paths: Iterable[str]) -> set[str]:
    """The distinct binned names among `paths`."""
    return {name for path in paths if (name := binned_name(path)) is not None}


def bin_problem(document: BinDocument, relpath: str, bits: int, registry: str) -> str | None:
    """Why a bin file (already checked against its pin) is not the bin `relpath` of a
    snapshot with `bins.bits = bits` for `registry`, or None when it is.

    A bin from another build or another position (mix-and-match), or one naming a file
    of another bin's range, would let it hide or replace another app's files.

    Args:
        document: The parsed bin.
        relpath: The bin path the snapshot pins it under, e.g. `bins/3f.json`.
        bits: The snapshot's `bins.bits`.
        registry: The base URL the snapshot is signed for.

    Returns:
        A message naming the first problem, or None.
    """
    if document.registry != registry:
        return f"belongs to registry {document.registry}"
    if (
        document.bits != bits
        or f"{BINS_DIR}/{document.prefix}.json" != relpath
        or int(document.prefix, 16) >> bits  # beyond the range: 2^bits bins
        or bin_path(int(document.prefix, 16), bits) != relpath  # the width
    ):
        return (
            f"is bin {document.prefix!r} of {document.bits} bits, but the snapshot pins it "
            f"as {relpath} of {bits} bits"
        )
    for path in document.meta:
        where = bin_of(path, bits)
        if where is None:
            return f"pins {path}, which is not a per-app file (the snapshot pins those itself)"
        if where != relpath:
            return f"pins {path}, whose app hashes to {where}, not to this bin"
    return None


def pins_through_bins(
    snapshot: Snapshot, read: Callable[[str, FileDigest], bytes | None]
) -> tuple[dict[str, FileDigest], list[str]]:
    """Every file a snapshot pins, directly or through its bins, for a reader that holds
    the bin files (a build's output, a deployed bucket): each bin is checked against its
    pin and by `bin_problem` before its pins are taken.

    Args:
        snapshot: The snapshot (its signature checked by the caller, if it matters).
        read: Returns a bin's bytes given its path and pin, or None when it has none.

    Returns:
        (path -> pin, with the bins themselves; the bin paths that were missing or did
        not check out, whose apps' pins are then unknown).
    """
    pins = dict(snapshot.meta)
    if snapshot.bins is None:
        return pins, []
    failed: list[str] = []
    for relpath, pin in sorted(snapshot.meta.items()):
        if not is_bin_path(relpath):
            continue
        data = read(relpath, pin)
        document = None
        if data is not None and len(data) == pin.length and sha256_hex(data) == pin.sha256:
            with contextlib.suppress(JsonRejectedError, ValidationError):
                document = BinDocument.model_validate(loads_bounded(data))
        if document is None or bin_problem(
            document, relpath, snapshot.bins.bits, snapshot.registry
        ):
            failed.append(relpath)
        else:
            pins.update(document.meta)
    return pins, failed
