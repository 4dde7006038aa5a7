"""The seen-log cache beside the output (builder/logcache.py): a rebuild decodes each
entry it saw before once, without re-encoding it, and a hostile cache is still ignored
or makes the build refuse, never accept."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from appshelf import filestat
from appshelf.builder.cache import CACHE_DIR
from appshelf.errors import OutputError
from appshelf.formats import log as log_format
from appshelf.formats.log import (
    Checkpoint,
    LifecycleEntry,
    NoteSignature,
    decode_entry,
    encode_bundle,
    encode_entry,
    format_note,
    parse_note,
    split_entries,
)
from appshelf.formats.merkle import leaf_hash, root_of
from appshelf.signing import releaselog
from conftest import build
from log_helpers import log_entries


class DecodeSpy:
    """Wraps the real `decode_entry` and `model_to_json`: which bytes the replay decoded,
    which were decoded again on demand (`releaselog.decoded_entry`, for the versions a
    build plans), and which were re-encoded by the canonical check."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.decoded: Counter[bytes] = Counter()
        self.redecoded: Counter[bytes] = Counter()
        self.encoded: list[bytes] = []
        self._on_demand = False
        real_decode, real_encode = log_format.decode_entry, log_format.model_to_json
        real_on_demand = releaselog.decoded_entry
        real_on_demand.cache_clear()  # another test's decodes must not hide this one's

        def decode(data: bytes, **options: bool) -> log_format.AnyEntry:
            (self.redecoded if self._on_demand else self.decoded)[bytes(data)] += 1
            return real_decode(data, **options)

        def on_demand(data: bytes) -> releaselog.Entry:
            self._on_demand = True
            try:
                return real_on_demand(data)
            finally:
                self._on_demand = False

        def encode(model: object) -> bytes:
            data = real_encode(model)  # type: ignore[arg-type]
            self.encoded.append(data)
            return data

        monkeypatch.setattr(releaselog, "decode_entry", decode)
        monkeypatch.setattr(releaselog, "decoded_entry", on_demand)
        monkeypatch.setattr(log_format, "model_to_json", encode)


def _cache(out: Path) -> tuple[Path, Path]:
    folder = out.parent / CACHE_DIR
    return folder / f"{out.name}.checkpoint", folder / f"{out.name}.log"


def _add_version(source: Path, version: str) -> None:
    folder = source / "apps/slack-notify" / version
    folder.mkdir()
    (folder / f"slack-notify-{version}.tar.gz").write_bytes(f"bytes of {version}".encode())


@pytest.fixture
def built(example_source: Path, tmp_path: Path) -> Path:
    """An output built twice (so the log has entries of two builds), its cache beside it."""
    out = tmp_path / "out"
    build(example_source, out)
    _add_version(example_source, "9.0.0")
    assert build(example_source, out).log_appended == 1
    checkpoint_path, log_path = _cache(out)
    assert checkpoint_path.is_file() and log_path.is_file()
    return out


def test_noop_build_decodes_each_seen_entry_once_and_reencodes_none(
    built: Path, example_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = log_entries(built)
    spy = DecodeSpy(monkeypatch)
    report = build(example_source, built)
    assert report.log_appended == 0
    assert set(spy.decoded) == set(entries)  # every entry replayed: every rule checked
    assert max(spy.decoded.values()) == 1
    assert not set(spy.encoded) & set(entries)  # no canonical re-encoding of a seen entry
    # The log keeps releases as bytes: only the apps planned again (files written under
    # two seconds ago, which stat cannot vouch for) have entries decoded again, once each.
    again = {json.loads(data)["app"] for data in spy.redecoded}
    assert len(again) <= report.apps - report.apps_reused
    assert max(spy.redecoded.values(), default=1) == 1


def test_noop_of_reused_apps_decodes_no_release_again(
    built: Path, example_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filestat, "RACY_NS", -(10**18))  # seconds-old files count as settled
    build(example_source, built)  # stat can vouch for every file now: remembered
    spy = DecodeSpy(monkeypatch)
    report = build(example_source, built)
    assert report.apps_reused == report.apps > 0
    assert max(spy.decoded.values()) == 1
    assert not spy.redecoded  # nothing planned: no release entry decoded a second time


def test_add_one_build_decodes_only_what_it_did_not_see_twice(
    built: Path, example_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = log_entries(built)
    _add_version(example_source, "9.1.0")
    spy = DecodeSpy(monkeypatch)
    assert build(example_source, built).log_appended == 1
    assert max(spy.decoded.values()) == 1
    assert set(spy.decoded) == set(entries)
    assert not set(spy.encoded) & set(entries)
    assert len(log_entries(built)) == len(entries) + 1


def _plant(out: Path, entries: list[bytes], root: bytes | None = None) -> None:
    """A cache of `entries` with an unsigned anchor that they hash to (or `root`)."""
    checkpoint_path, log_path = _cache(out)
    origin = parse_note(checkpoint_path.read_bytes())[0].origin
    leaves = [leaf_hash(e) for e in entries]
    anchor = Checkpoint(origin, len(entries), root or root_of(leaves))
    note = format_note(anchor, [NoteSignature("planted", b"\0" * 4, b"\1" * 64)])
    checkpoint_path.write_bytes(note)
    log_path.write_bytes(encode_bundle(entries))


def _rebuild_ignores_cache(out: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build succeeds as without a cache: every entry read from the output, each
    decoded with the canonical check, and the log unchanged."""
    entries = log_entries(out)
    spy = DecodeSpy(monkeypatch)
    assert build(source, out).log_appended == 0
    assert log_entries(out) == entries
    assert set(entries) <= set(spy.encoded)  # all fully checked: the cache was not used


def test_tampered_entry_bytes_are_ignored(
    built: Path, example_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, log_path = _cache(built)
    raw = bytearray(log_path.read_bytes())
    at = raw.index(b"slack-notify")
    raw[at] = ord("S")  # same length, another app: a valid entry that is not the log's
    log_path.write_bytes(bytes(raw))
    _rebuild_ignores_cache(built, example_source, monkeypatch)


@pytest.mark.parametrize("cut", ["inside an entry", "at an entry boundary"])
def test_truncated_cache_is_ignored(
    built: Path, example_source: Path, monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    _, log_path = _cache(built)
    raw = log_path.read_bytes()
    if cut == "at an entry boundary":
        log_path.write_bytes(encode_bundle(split_entries(raw)[:-1]))
    else:
        log_path.write_bytes(raw[: len(raw) - 7])
    _rebuild_ignores_cache(built, example_source, monkeypatch)


def test_anchor_with_a_wrong_root_is_refused(built: Path, example_source: Path) -> None:
    """An anchor of the published log's size with another root says this machine saw
    another history at that size: a fork. The build refuses (an anchor can make a build
    refuse, never accept), and says how to go on if that log was never published."""
    _plant(built, log_entries(built), root=b"\x42" * 32)
    before = log_entries(built)
    with pytest.raises(OutputError, match=r"rewritten or forked.*delete \.appshelf-cache"):
        build(example_source, built)
    assert log_entries(built) == before


def test_shorter_anchor_of_another_history_is_refused(built: Path, example_source: Path) -> None:
    """An anchor at a smaller size whose root is not the published log's prefix there."""
    entries = log_entries(built)
    _plant(built, entries[:-1], root=b"\x42" * 32)
    with pytest.raises(OutputError, match="rewritten or forked"):
        build(example_source, built)


def test_anchor_of_a_prefix_is_accepted(built: Path, example_source: Path) -> None:
    """An honest older anchor (a prefix of the published log, no cached entries): the
    build reads the whole log and goes on."""
    entries = log_entries(built)
    _plant(built, entries[:-1])
    _, log_path = _cache(built)
    log_path.unlink()
    assert build(example_source, built).log_appended == 0


def test_planted_non_canonical_log_is_ignored(
    built: Path, example_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile writer's own anchor and entries that hash to it, the last re-spelled
    (same JSON, not RFC 8785): replayed without the canonical check, but never bound to
    the signed checkpoint, so not the log: the build reads it all, as before."""
    entries = log_entries(built)
    respelled = json.dumps(json.loads(entries[-1]), indent=1).encode()
    _plant(built, [*entries[:-1], respelled])
    _rebuild_ignores_cache(built, example_source, monkeypatch)


def test_planted_rule_breaking_log_is_refused(built: Path, example_source: Path) -> None:
    """Entries that hash to their planted anchor but break a rule (a release logged
    twice): never replayed, and the anchor, of the published size with another root, is
    a fork: refused, the output left as it was."""
    entries = log_entries(built)
    release = next(e for e in entries if b'"type":"appshelf.log.release"' in e)
    _plant(built, [*entries[:-1], release])  # a release logged twice
    with pytest.raises(OutputError, match="rewritten or forked"):
        build(example_source, built)
    assert log_entries(built) == entries


def test_planted_forked_log_is_refused(built: Path, example_source: Path) -> None:
    """Canonical entries that keep every rule and hash to a planted anchor, but are not
    the published log: the anchor makes the build refuse (never accept)."""
    entries = log_entries(built)
    last = decode_entry(entries[-1]).model_copy(update={"logged": "2000-01-01T00:00:00Z"})
    _plant(built, [*entries[:-1], encode_entry(last)])
    with pytest.raises(OutputError, match="rewritten or forked"):
        build(example_source, built)


def test_planted_longer_log_is_refused(built: Path, example_source: Path) -> None:
    entries = log_entries(built)
    last = decode_entry(entries[-1]).model_copy(update={"version": "99.0.0"})
    _plant(built, [*entries, encode_entry(last)])
    with pytest.raises(OutputError, match="rolled back or replaced"):
        build(example_source, built)


def test_a_copy_keeps_the_root_and_recomputes_it_after_an_append(built: Path) -> None:
    """`LogState.copy` carries the cached root over (a build copies the state it read);
    once the copy grows, its root is the root of its own leaves, not the cached one."""
    entries = log_entries(built)
    state = releaselog.replay(entries[:-1], bound=True)
    assert state.root == root_of([leaf_hash(e) for e in entries[:-1]])
    clone = state.copy()
    assert clone.root == state.root
    last = decode_entry(entries[-1])
    clone.append(last)
    assert clone.root == root_of([leaf_hash(e) for e in entries])
    assert state.root == root_of([leaf_hash(e) for e in entries[:-1]])  # the original stays


def _standings(state: releaselog.LogState) -> dict[tuple[str, str], tuple[object, ...]]:
    return {
        k: (r.standing.yanked, r.standing.deprecated, r.standing.takedown, tuple(r.history))
        for k, r in state.releases.items()
    }


@pytest.mark.parametrize("changed", ["clone", "original", "both"])
def test_a_copy_and_its_original_change_independently(built: Path, changed: str) -> None:
    """`copy` shares the releases until a lifecycle entry changes one (copy-on-write): a
    yank or takedown applied to either state is never seen by the other, also when both
    change the same release, and also for a copy of a copy."""
    state = releaselog.replay(log_entries(built), bound=True)
    app, version = sorted(state.releases)[0]
    before = _standings(state)
    clone = state.copy()
    grandchild = clone.copy()

    def lifecycle(action: str) -> LifecycleEntry:
        assert state.registry is not None
        logged = "2026-12-04T00:00:00Z"
        return LifecycleEntry(
            registry=state.registry, logged=logged, action=action, app=app, version=version
        )

    if changed in ("clone", "both"):
        clone.append(lifecycle("yank"))
    if changed in ("original", "both"):
        state.append(lifecycle("takedown"))
    key = (app, version)
    assert _standings(grandchild) == before
    if changed == "clone":
        assert _standings(state) == before
        assert clone.releases[key].standing.yanked == "yanked"
    if changed == "original":
        assert _standings(clone) == before
        assert state.releases[key].standing.takedown == "taken down"
    if changed == "both":
        assert clone.releases[key].standing.takedown is None
        assert state.releases[key].standing.yanked is None
        assert clone.releases[key].history == [*before[key][3], clone.size - 1]
    unchanged = [k for k in state.releases if k != key]
    assert all(state.releases[k] is clone.releases[k] for k in unchanged)  # still shared


def _make_hostile(path: Path, kind: str, tmp_path: Path) -> None:
    data = path.read_bytes()
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)  # read without O_NONBLOCK, the build would wait for a writer
    elif kind == "symlink":
        target = tmp_path / f"elsewhere-{path.name}"
        target.write_bytes(data)  # the same bytes, but through a link: not followed
        path.symlink_to(target)
    elif kind == "trailing newline":
        path.write_bytes(data + b"\n")
    elif kind == "nested":
        path.write_bytes(encode_bundle([b"[" * 5000 + b"]" * 5000]))
    else:  # huge: past the cap, sparse (nothing is read)
        with path.open("wb") as handle:
            handle.truncate((1 << 30) + 1)


_HOSTILE = [
    *(("log", kind) for kind in ("fifo", "symlink", "trailing newline", "nested", "huge")),
    *(("checkpoint", kind) for kind in ("fifo", "symlink", "trailing newline", "huge")),
]


@pytest.mark.parametrize(("which", "kind"), _HOSTILE)
def test_a_hostile_cache_file_is_ignored(
    built: Path,
    example_source: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    which: str,
) -> None:
    """The seen log is read in a thread while git runs (builder/pipeline.py): whatever
    stands at its paths, the build neither hangs nor fails, and uses none of it.
    (A checkpoint with a trailing newline is the same note: it may still anchor.)"""
    checkpoint_path, log_path = _cache(built)
    _make_hostile(checkpoint_path if which == "checkpoint" else log_path, kind, tmp_path)
    if which == "log":
        _rebuild_ignores_cache(built, example_source, monkeypatch)
    else:
        entries = log_entries(built)
        assert build(example_source, built).log_appended == 0
        assert log_entries(built) == entries
