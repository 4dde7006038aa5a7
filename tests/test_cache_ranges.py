"""`builder/cache._outside`: the SQL ranges that skip whole folders select exactly the
names under none of them, in SQLite's own comparison (byte order of UTF-8)."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appshelf.builder.cache import _outside

_PART = st.text(alphabet="ab-_.0/é", min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(_PART.map(lambda p: f"r/{p}"), max_size=30),
    folders=st.lists(_PART.map(lambda p: f"r/{p.rstrip('/')}/"), max_size=6),
)
def test_the_ranges_select_every_name_outside_the_folders(
    names: list[str], folders: list[str]
) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (name TEXT PRIMARY KEY) WITHOUT ROWID")
    db.executemany("INSERT OR IGNORE INTO t VALUES (?)", ((n,) for n in names))
    found: list[str] = []
    for where, bounds in _outside(folders) or [("1", ())]:  # none: the whole table
        found += [row[0] for row in db.execute(f"SELECT name FROM t WHERE {where}", bounds)]
    assert len(found) == len(set(found))  # the ranges do not overlap
    assert set(found) == {n for n in names if not n.startswith(tuple(folders) or ("\0",))}


def test_no_folders_means_one_query_for_everything() -> None:
    assert _outside([]) == []  # the caller then selects the whole table
    assert _outside(["a/"]) == [("name < ?", ("a/",)), ("name >= ?", ("a0",))]


def test_a_name_without_its_slash_is_refused() -> None:
    with pytest.raises(ValueError, match="trailing"):
        _outside(["apps/x"])
