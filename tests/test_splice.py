"""registry.json and index.json are spliced from per-app fragments (builder/plan.py), and
the splice is byte for byte the full canonical encoding: on random apps against the
encoder itself (and RFC 8785's reference implementation), and on real builds, where a
no-op and a one-app change must write what a cold build writes."""

from __future__ import annotations

import json
import sqlite3
import sys
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appshelf.builder import plan as plan_module
from appshelf.builder.cache import CACHE_DIR
from appshelf.builder.plan import (
    AppFragments,
    AppSummary,
    app_fragments,
    index_json,
    registry_json,
)
from appshelf.formats.canonical import (
    canonical_array,
    canonical_json,
    canonical_object,
    model_to_json,
)
from appshelf.formats.documents import IndexEntry, RegistryIndex
from appshelf.formats.flows import BlockStyle, FlowsApp, FlowsRegistry
from appshelf.formats.layout import APP_KEY_RE
from conftest import FIXED_NOW, REPO_ROOT, build

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
sys.path.insert(0, str(REPO_ROOT / "tests" / "anip"))
import generate
from anip_support import add_template

from test_memo import settled_at_once  # noqa: F401 (autouse: files seconds old are settled)

FAST = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters an encoder is likelier to get wrong: escapes, controls, the line separators
# JSON allows raw, the last BMP characters, and astral ones (two UTF-16 code units, which
# sort before U+E000..U+FFFF under RFC 8785 but after them by code point).
TRICKY = '"\\/\b\f\n\r\t\x00\x1f\x7f\u2028\u2029\ud7ff\ue000\uffff\U00010000\U0001f600\U0010ffff é'
TEXT = st.text(
    st.one_of(
        st.sampled_from(TRICKY), st.characters(exclude_categories=("Cs",), max_codepoint=0x10FFFF)
    ),
    max_size=12,
)
KEY = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", max_size=63),
)
VERSION = st.builds(
    lambda major, minor, patch, pre, build: f"{major}.{minor}.{patch}{pre}{build}",
    st.integers(0, 10**6),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["", "-rc.1", "-alpha", "-0.3.7", "-x-y-z.--"]),
    st.sampled_from(["", "+build.5", "+001", "+exp.sha.5114f85"]),
)
COLOR = st.from_regex(r"\A#[0-9A-Fa-f]{6}\Z")
WORDS = st.lists(TEXT, max_size=3)
# Member names from a few characters either side of where the two orders differ.
NAMES = st.text(
    st.sampled_from("a\x7f\ud7ff\ue000\uffff\U00010000\U0001f600\U0010ffff"), max_size=3
)


@st.composite
def summaries(draw: st.DrawFn, key: str) -> AppSummary:
    name, description = draw(TEXT), draw(TEXT)
    color = draw(COLOR)
    latest = draw(st.none() | VERSION)
    icon = draw(st.none() | st.just(f"apps/{key}/icon.svg"))
    flows = FlowsApp(
        name=name,
        description=description,
        blockStyle=BlockStyle(iconUrl=f"https://r.example/{icon}" if icon else None, color=color),
        appMetadataUrl=f"https://r.example/apps/{key}/versions.json",
    )
    index = IndexEntry(
        key=key,
        name=name,
        description=description,
        tags=draw(WORDS),
        category=draw(st.none() | TEXT),
        latest=latest,
        versions=draw(st.integers(0, 10**6)) if latest else 0,
        provides=draw(WORDS),
        requires=draw(WORDS),
        icon=icon,
        color=color,
        kind=draw(st.sampled_from([None, None, "template"])),
    )
    return AppSummary(key=key, flows=flows, index=index, releases=[])


@st.composite
def registries(draw: st.DrawFn) -> list[AppSummary]:
    keys = draw(st.lists(KEY, unique=True, max_size=12))
    return sorted((draw(summaries(key)) for key in keys), key=lambda s: s.key)


def full_encodings(apps: list[AppSummary], name: str, description: str) -> tuple[bytes, bytes]:
    """The two files as plan.py wrote them before the splice: one model, one encoding."""
    flows = FlowsRegistry(apps={s.key: s.flows for s in apps if s.index.kind is None})
    index = RegistryIndex(
        registry="https://r.example/",
        name=name,
        description=description,
        apps=[s.index for s in apps],
    )
    return model_to_json(flows), model_to_json(index)


def reference(document: bytes) -> bytes:
    """RFC 8785's reference implementation, on the decoded file."""
    return bytes(rfc8785.dumps(json.loads(document)))


@FAST
@given(registries(), TEXT, TEXT)
@example([], "", "")
def test_spliced_files_are_the_full_canonical_encoding(
    apps: list[AppSummary], name: str, description: str
) -> None:
    assert all(APP_KEY_RE.match(s.key) for s in apps)
    fragments = {s.key: app_fragments(s) for s in apps}
    index = RegistryIndex(
        registry="https://r.example/", name=name, description=description, apps=[]
    )
    spliced = registry_json(fragments), index_json(index, fragments)
    assert spliced == full_encodings(apps, name, description)
    assert spliced == tuple(reference(document) for document in spliced)
    listed = json.loads(spliced[1])["apps"]
    assert [entry["key"] for entry in listed] == [s.key for s in apps]  # by key, as before


@FAST
@given(st.dictionaries(NAMES | TEXT, st.one_of(TEXT, st.integers(-(2**53) + 1, 2**53 - 1), WORDS)))
def test_canonical_object_orders_members_by_utf16_code_units(members: dict[str, Any]) -> None:
    """Astral names (surrogate pairs, 0xD800..) sort before U+E000..U+FFFF in RFC 8785,
    unlike Python's code point order."""
    spliced = canonical_object({k: canonical_json(v) for k, v in members.items()})
    assert spliced == bytes(rfc8785.dumps(members)) == canonical_json(members)
    values = list(members.values())
    assert canonical_array(canonical_json(v) for v in values) == bytes(rfc8785.dumps(values))


def test_canonical_object_sorts_astral_before_private_use() -> None:
    members = {"\ue000": b"1", "\U0001f600": b"2", "z": b"3"}
    assert canonical_object(members) == '{"z":3,"\U0001f600":2,"\ue000":1}'.encode()


# Builds: the splice is what a cold build writes.

APPS, VERSIONS = 6, 2


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    generate.generate_small(root, APPS, VERSIONS, seed=5)
    add_template(root)  # not in registry.json, in index.json
    rename(root, "app-00002", 'Ünïcode \U0001f680 "quoted" \\ name')
    return root


def rename(root: Path, key: str, name: str) -> None:
    app_toml = root / "apps" / key / "app.toml"
    lines = app_toml.read_text().splitlines()
    lines = [
        f"name = {json.dumps(name, ensure_ascii=False)}" if line.startswith("name = ") else line
        for line in lines
    ]
    app_toml.write_text("\n".join(lines) + "\n")


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The keys of the apps whose fragments a build encodes."""
    seen: list[str] = []
    real = plan_module.app_fragments

    def spy(summary: AppSummary) -> AppFragments:
        seen.append(summary.key)
        return real(summary)

    monkeypatch.setattr(plan_module, "app_fragments", spy)
    yield seen


SHARED = ("registry.json", "index.json")


def assert_as_cold(source: Path, out: Path, tmp_path: Path, hours: int) -> None:
    """A cold build (its published times taken from `out`) writes the same shared files."""
    cold = tmp_path / f"cold-{hours}"
    build(source, cold, now=FIXED_NOW + timedelta(hours=hours), previous=out)
    for name in SHARED:
        assert (cold / name).read_bytes() == (out / name).read_bytes(), name


def test_noop_splices_every_app_and_matches_a_cold_build(
    source: Path, tmp_path: Path, encoded: list[str]
) -> None:
    out = tmp_path / "out"
    build(source, out)
    assert len(encoded) == APPS + 1
    encoded.clear()
    report = build(source, out, now=FIXED_NOW + timedelta(hours=1))
    assert (report.apps_reused, report.files_written, encoded) == (APPS + 1, 0, [])
    registry = json.loads((out / "registry.json").read_bytes())
    assert "starter" not in registry["apps"] and len(registry["apps"]) == APPS
    assert registry["apps"]["app-00002"]["name"].endswith('"quoted" \\ name')
    assert_as_cold(source, out, tmp_path, 1)


def test_one_app_changed_is_encoded_alone_and_matches_a_cold_build(
    source: Path, tmp_path: Path, encoded: list[str]
) -> None:
    out = tmp_path / "out"
    build(source, out)
    encoded.clear()
    rename(source, "app-00004", "\U00010000 first in UTF-16 order é")
    generate.add_version(source, "app-00001", "70.0.0")
    report = build(source, out, now=FIXED_NOW + timedelta(hours=1))
    assert (report.apps_reused, sorted(encoded)) == (APPS - 1, ["app-00001", "app-00004"])
    index = json.loads((out / "index.json").read_bytes())
    by_key = {entry["key"]: entry for entry in index["apps"]}
    assert by_key["app-00001"]["latest"] == "70.0.0"
    assert by_key["app-00004"]["name"].startswith("\U00010000")
    assert_as_cold(source, out, tmp_path, 1)


@pytest.mark.parametrize(
    ("field", "fragment"),
    [
        (None, None),  # the record as stored, rewritten: still reused (the check is sound)
        ("index_fragment", '{"key":"app-00003"},{"key":"injected"}'),
        ("index_fragment", "[]"),
        ("index_fragment", "not json"),
        ("index_fragment", ' {"key":"app-00003"}'),
        ("index_fragment", '{"key":"app-00004"}'),  # another app's entry
        ("flows_fragment", None),  # an app that is no template left out of registry.json
        ("flows_fragment", '{"name":"x"},"injected":{"name":"y"}'),
        # nested past any parser's recursion limit: a miss, not a RecursionError
        ("flows_fragment", '{"name":' + "[" * 100_000 + "]" * 100_000 + "}"),
    ],
)
def test_a_record_with_a_bad_fragment_is_a_miss(
    source: Path, tmp_path: Path, field: str | None, fragment: str | None
) -> None:
    out = tmp_path / "out"
    build(source, out)
    db = sqlite3.connect(tmp_path / CACHE_DIR / "out.sqlite")
    (payload,) = db.execute("SELECT payload FROM apps WHERE name = 'app-00003'").fetchone()
    record = json.loads(payload)
    if field is not None:
        record[field] = fragment
    payload = json.dumps(record).encode()
    crc = zlib.crc32(payload, zlib.crc32(b"app-00003"))  # as builder/cache.py checks it
    db.execute("UPDATE apps SET payload = ?, crc = ? WHERE name = 'app-00003'", (payload, crc))
    db.commit()
    db.close()
    report = build(source, out, now=FIXED_NOW + timedelta(hours=1))
    assert report.apps_reused == APPS + (field is None)  # else app-00003 is read again
    for name in SHARED:
        assert b"injected" not in (out / name).read_bytes()
    assert_as_cold(source, out, tmp_path, 1)
