"""RFC 9162 Merkle tree hashing, proofs and their verification (pure: no I/O).

The release log (formats/log.py) is a Merkle tree over its entries, exactly as in
Certificate Transparency and Go's checksum database:

- leaf hash `SHA-256(0x00 || entry)`, node hash `SHA-256(0x01 || left || right)`,
  the root of the empty tree `SHA-256("")`;
- the tree of `n` leaves splits at the largest power of two smaller than `n`.

Proofs are built from a `NodeHashes` oracle (for the builder: every leaf in memory; for
a client: tiles fetched from a server, which are untrusted), and only the verification
functions decide anything: a proof made from forged tiles cannot verify against a root
that came from a signed checkpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from appshelf.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# (level, index) -> the hash of the complete subtree of 2**level leaves starting at
# leaf index * 2**level.
NodeHashes = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree over these leaf hashes, in O(n) without recursion."""
    if not leaves:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []  # (level, hash), complete subtrees left to right
    for index, leaf in enumerate(leaves):
        stack.append((0, leaf))
        count = index + 1
        level = 0
        while count & 1 == 0:  # the two last subtrees are now siblings of one parent
            _, right = stack.pop()
            _, left = stack.pop()
            level += 1
            stack.append((level, node_hash(left, right)))
            count >>= 1
    root = stack.pop()[1]
    while stack:
        root = node_hash(stack.pop()[1], root)
    return root


def subtree_hash(nodes: NodeHashes, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a range that occurs in the tree's decomposition (`start` is
    aligned to the largest power of two not above `end - start`)."""
    size = end - start
    if size <= 0:
        raise ProofError(f"empty range {start}..{end}")
    if size & (size - 1) == 0 and start % size == 0:
        return nodes(size.bit_length() - 1, start // size)
    k = _split(size)
    return node_hash(subtree_hash(nodes, start, start + k), subtree_hash(nodes, start + k, end))


def inclusion_proof(nodes: NodeHashes, index: int, size: int) -> list[bytes]:
    """RFC 9162 2.1.3.1: PATH(index, D[0:size]).

    Raises:
        ProofError: index outside the tree.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree_hash(nodes, start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(nodes, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof(nodes: NodeHashes, old_size: int, size: int) -> list[bytes]:
    """RFC 9162 2.1.4.1: PROOF(old_size, D[0:size]).

    Raises:
        ProofError: old_size outside 0..size.
    """
    if not 0 <= old_size <= size:
        raise ProofError(f"a tree of {size} cannot extend one of {old_size}")
    if old_size in (0, size):
        return []
    proof: list[bytes] = []
    start, end, complete = 0, size, True
    m = old_size
    while True:
        if m == end - start:
            if not complete:
                proof.append(subtree_hash(nodes, start, end))
            break
        k = _split(end - start)
        if m <= k:
            proof.append(subtree_hash(nodes, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(nodes, start, start + k))
            start += k
            m -= k
            complete = False
    proof.reverse()
    return proof


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2.

    Raises:
        ProofError: the proof does not show `leaf` at `index` in the tree `root` of `size`.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0 or r != root:
        raise ProofError(f"leaf {index} is not in the tree of {size} with that root")


def verify_consistency(
    old_size: int, old_root: bytes, size: int, root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2: the tree (`size`, `root`) extends (`old_size`, `old_root`).

    Raises:
        ProofError: it does not (a rewritten or forked history).
    """
    if not 0 <= old_size <= size:
        raise ProofError(f"a tree of {size} cannot extend one of {old_size}")
    if old_size in (0, size):
        _verify_empty_proof(old_size, old_root, size, root, proof)
        return
    path = list(proof)
    if not path:
        raise ProofError("empty consistency proof")
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fr, sr, sn = _consistency_roots(old_size, size, path)
    if sn != 0 or fr != old_root or sr != root:
        raise ProofError(f"the tree of {size} does not extend the tree of {old_size} seen before")


def _verify_empty_proof(
    old_size: int, old_root: bytes, size: int, root: bytes, proof: Sequence[bytes]
) -> None:
    """From the empty tree, or between two trees of one size, the proof is empty."""
    if old_size == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
    elif proof or old_root != root:
        raise ProofError(f"two different trees of size {size}")


def _consistency_roots(old_size: int, size: int, path: list[bytes]) -> tuple[bytes, bytes, int]:
    """RFC 9162 2.1.4.2 steps 3-6: the old and new roots `path` implies, and what is
    left of `size - 1` (not 0: the proof is too short)."""
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr, sr, sn


class MemoryTree:
    """Node hashes over leaves held in memory, computed level by level once."""

    def __init__(self, leaves: Sequence[bytes]):
        self.levels: list[list[bytes]] = [list(leaves)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def __call__(self, level: int, index: int) -> bytes:
        try:
            return self.levels[level][index]
        except IndexError:
            raise ProofError(f"no complete subtree at level {level}, index {index}") from None

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return subtree_hash(self, 0, size) if size else EMPTY_ROOT
