"""Reading a built release log back from an output folder, for the log tests."""

from __future__ import annotations

from pathlib import Path

from appshelf.formats.log import (
    CHECKPOINT,
    TILE_WIDTH,
    Checkpoint,
    NodeTileFetch,
    TileRef,
    decode_bundle,
    parse_note,
    tile_path,
)


def checkpoint(site: Path) -> Checkpoint:
    return parse_note((site / CHECKPOINT).read_bytes())[0]


def log_entries(site: Path) -> list[bytes]:
    """Every entry, from the entry bundles the checkpoint's size says exist."""
    size = checkpoint(site).size
    entries: list[bytes] = []
    for n in range(-(-size // TILE_WIDTH)):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        entries += decode_bundle((site / tile_path("entries", n, width)).read_bytes(), width)
    return entries


def tile_reader(site: Path) -> NodeTileFetch:
    """A TileNodes fetch function over the hash tiles in `site`."""

    def fetch(ref: TileRef) -> bytes:
        return (site / ref.path).read_bytes()

    return fetch
