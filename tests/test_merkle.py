"""RFC 9162 hashing and proofs: against a naive recursive definition, and from tiles."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appshelf.formats import log, merkle


def naive_root(entries: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 2.1.1."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(entries[:k]) + naive_root(entries[k:])).digest()


def _entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def _tile_nodes(entries: list[bytes]) -> log.TileNodes:
    leaves = [merkle.leaf_hash(e) for e in entries]
    tree = merkle.MemoryTree(leaves)
    tiles = {ref.path: data for ref, data in log.hash_tiles(tree.levels, len(leaves))}
    return log.TileNodes(len(leaves), lambda ref: tiles[ref.path])


@pytest.mark.parametrize("n", [*range(0, 70), 255, 256, 257, 511, 513, 1000])
def test_root_matches_the_rfc_definition(n: int) -> None:
    entries = _entries(n)
    leaves = [merkle.leaf_hash(e) for e in entries]
    assert merkle.root_of(leaves) == naive_root(entries)
    assert merkle.MemoryTree(leaves).root() == naive_root(entries)


def test_known_answer() -> None:
    """Certificate Transparency's empty-tree and one-leaf values (RFC 6962 test vectors)."""
    assert merkle.EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64, 300, 700])
def test_inclusion_proofs_verify_and_tampering_fails(n: int) -> None:
    entries = _entries(n)
    leaves = [merkle.leaf_hash(e) for e in entries]
    tree = merkle.MemoryTree(leaves)
    root = tree.root()
    tiles = _tile_nodes(entries)
    for index in range(0, n, max(1, n // 40)):
        proof = merkle.inclusion_proof(tree, index, n)
        assert proof == merkle.inclusion_proof(tiles, index, n)
        merkle.verify_inclusion(leaves[index], index, n, proof, root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(merkle.leaf_hash(b"forged"), index, n, proof, root)
        if proof:
            bad = [*proof[:-1], bytes(32)]
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(leaves[index], index, n, bad, root)
        if n > 1:
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(leaves[index], (index + 1) % n, n, proof, root)


def test_consistency_for_every_pair_up_to_40() -> None:
    entries = _entries(40)
    leaves = [merkle.leaf_hash(e) for e in entries]
    tree = merkle.MemoryTree(leaves)
    for n in range(0, 41):
        for m in range(0, n + 1):
            proof = merkle.consistency_proof(tree, m, n)
            merkle.verify_consistency(m, tree.root(m), n, tree.root(n), proof)
            if 0 < m < n:
                forked = naive_root([*entries[: m - 1], b"forked"])
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(m, forked, n, tree.root(n), proof)
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(m, tree.root(m), n, bytes(32), proof)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 1500), st.data())
def test_consistency_from_tiles(n: int, data: st.DataObject) -> None:
    m = data.draw(st.integers(0, n))
    entries = _entries(n)
    tiles = _tile_nodes(entries)
    proof = merkle.consistency_proof(tiles, m, n)
    merkle.verify_consistency(m, naive_root(entries[:m]), n, naive_root(entries), proof)


def test_bundles_round_trip_and_reject_garbage() -> None:
    entries = _entries(7)
    data = log.encode_bundle(entries)
    assert log.decode_bundle(data, 7) == entries
    for bad in (data[:-1], data + b"\x00", data[:1]):
        with pytest.raises(log.LogFormatError):
            log.decode_bundle(bad, 7)
    with pytest.raises(log.LogFormatError):
        log.decode_bundle(data, 6)


def test_tile_paths_follow_tlog_tiles() -> None:
    assert log.tile_index_path(1234067) == "x001/x234/067"
    assert log.tile_index_path(0) == "000"
    assert log.tile_path(0, 1234067, 5) == "log/tile/0/x001/x234/067.p/5"
    assert log.tile_path("entries", 3) == "log/tile/entries/003"
    paths = [t.path for t in log.tiles_for(256 * 256 + 3)]
    assert "log/tile/1/000" in paths and "log/tile/2/000.p/1" in paths
    assert "log/tile/entries/256.p/3" in paths and "log/tile/0/256.p/3" in paths
