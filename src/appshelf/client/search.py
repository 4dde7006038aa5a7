"""Search the verified index.json: by key, name, description, tags, category and interfaces.

Every word of the query must match somewhere (case-insensitive substring); results are
ranked by where the words matched (key > name > tags/interfaces > description).
"""

from __future__ import annotations

from dataclasses import dataclass

from appshelf.formats.documents import IndexEntry, RegistryIndex


@dataclass(frozen=True)
class SearchHit:
    entry: IndexEntry
    score: int


def _score(entry: IndexEntry, word: str) -> int:
    fields = (
        (100, [entry.key]),
        (60, [entry.name]),
        (40, [*entry.tags, *entry.provides, *entry.requires, entry.category or ""]),
        (10, [entry.description]),
    )
    best = 0
    for weight, values in fields:
        for value in values:
            lowered = value.lower()
            if lowered == word:
                best = max(best, weight * 2)
            elif word in lowered:
                best = max(best, weight)
    return best


def search(
    index: RegistryIndex,
    query: str = "",
    *,
    provides: str | None = None,
    requires: str | None = None,
    tag: str | None = None,
) -> list[SearchHit]:
    """Apps matching every query word and every given filter, best first."""
    words = query.lower().split()
    hits: list[SearchHit] = []
    for entry in index.apps:
        if provides is not None and provides not in entry.provides:
            continue
        if requires is not None and requires not in entry.requires:
            continue
        if tag is not None and tag not in entry.tags:
            continue
        scores = [_score(entry, word) for word in words]
        if all(scores):
            hits.append(SearchHit(entry, sum(scores)))
    return sorted(hits, key=lambda hit: (-hit.score, hit.entry.key))
