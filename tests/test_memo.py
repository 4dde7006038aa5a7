"""Unchanged apps are reused (builder/memo.py): only ever a saving, never a different output.

Every scenario ends with the same check: the incremental output, site included, is
byte-identical (snapshot aside: its version counts builds) to a cold build of the same
source that takes its published state from the incremental one.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appshelf import filestat
from appshelf.builder import writer
from appshelf.builder.cache import CACHE_DIR
from appshelf.builder.memo import _all_below
from appshelf.builder.pipeline import BuildOptions, BuildReport
from appshelf.builder.reuse import Reuse
from appshelf.errors import SourceTreeError
from appshelf.filehash import HashStats
from appshelf.formats.consistent import plain_path
from appshelf.signing.keys import development_key, write_new_key_file
from appshelf.signing.releaselog import make_rotation
from appshelf.site import SiteOptions, site_generator
from appshelf.source.lifecycle import record_standing
from conftest import FIXED_NOW, REPO_ROOT, build
from generations import current_files

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import generate

APPS, VERSIONS = 12, 3


@pytest.fixture(autouse=True)
def settled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files here are seconds old; treat them as settled, as they would be a bit later."""
    monkeypatch.setattr(filestat, "RACY_NS", -(10**18))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    generate.generate_small(root, APPS, VERSIONS, seed=3)
    return root


def site_build(source: Path, out: Path, hours: int = 0, **options: object) -> BuildReport:
    options.setdefault("generators", (site_generator(),))
    return build(source, out, now=FIXED_NOW + timedelta(hours=hours), **options)


def files(root: Path) -> dict[str, bytes]:
    """The folder as a cold build makes it (which keeps no earlier snapshot's copies)."""
    return current_files(root, frozenset({"snapshot.json"}))


def assert_same_as_cold(
    source: Path, out: Path, tmp_path: Path, hours: int, **options: object
) -> None:
    cold = tmp_path / f"cold-{hours}"
    site_build(source, cold, hours, previous=out, **options)
    assert files(cold) == files(out)


def test_noop_reuses_every_app_and_writes_nothing(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert site_build(source, out).apps_reused == 0
    again = site_build(source, out, 1)
    assert (again.apps_reused, again.files_written, again.versions) == (
        APPS,
        0,
        APPS * VERSIONS,
    )
    assert_same_as_cold(source, out, tmp_path, 1)


@pytest.mark.parametrize("batch", [1, 7])
def test_files_remembered_a_batch_at_a_time_are_all_remembered(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """The writer stores what it wrote a batch at a time (a cold build holds each file's
    stat line, not its key): across every batch edge each file gets its row, and each
    app's record the digest a no-op recomputes from lstat(), so the next build reuses
    every app and compares no file by reading it."""
    monkeypatch.setattr(writer, "_STAGE_BATCH", batch)
    out = tmp_path / "out"
    site_build(source, out)
    db = sqlite3.connect(tmp_path / CACHE_DIR / "out.sqlite")
    rows = {row[0] for row in db.execute("SELECT name FROM outputs")}
    db.close()
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written <= rows, sorted(written - rows)[:5]
    read: list[str] = []
    real_same_bytes = writer._same_bytes
    monkeypatch.setattr(
        writer, "_same_bytes", lambda path, *a: read.append(str(path)) or real_same_bytes(path, *a)
    )
    again = site_build(source, out, 1)
    assert (again.apps_reused, again.files_written, read) == (APPS, 0, [])


def test_edits_are_seen_and_only_that_app_is_replanned(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    site_build(source, out)
    app_toml = source / "apps/app-00004/app.toml"
    app_toml.write_text(app_toml.read_text().replace('name = "', 'name = "Renamed '))
    generate.add_version(source, "app-00007", "50.0.0")
    report = site_build(source, out, 1)
    assert report.apps_reused == APPS - 2
    assert b"Renamed " in (out / "apps/app-00004/index.html").read_bytes()
    assert b"Renamed " in (out / "index.json").read_bytes()
    assert b"50.0.0" in (out / "apps/app-00007/index.html").read_bytes()
    assert (out / "apps/app-00007/50.0.0/index.html").is_file()
    assert_same_as_cold(source, out, tmp_path, 1)


def test_new_latest_version_rerenders_the_older_version_pages(source: Path, tmp_path: Path) -> None:
    """An old version's section links to the latest version, so a new version changes
    the others: the app's page fingerprint must cover which one is latest."""
    out = tmp_path / "out"
    site_build(source, out)
    old = sorted(p.parent.name for p in (source / "apps/app-00007").glob("*/release.toml"))
    generate.add_version(source, "app-00007", "50.0.0")
    site_build(source, out, 1)
    page = (out / "apps/app-00007/index.html").read_text()
    for version in old:
        start = page.index(f'<details class="version-details" id="v-{version}"')
        section = page[start:].split("</details>", 1)[0]
        assert '<a href="#v-50.0.0">50.0.0</a> is the latest' in section, version
        stub = (out / "apps/app-00007" / version / "index.html").read_text()
        assert f'href="../index.html#v-{version}"' in stub
    assert_same_as_cold(source, out, tmp_path, 1)


def test_removed_app_is_refused_until_taken_down(source: Path, tmp_path: Path) -> None:
    """Deleting a published app's folder is refused (the release log remembers it); once
    every version is taken down, the folder may go, and the app leaves every index."""
    out = tmp_path / "out"
    site_build(source, out)
    last = f"app-{APPS - 1:05d}"  # the last app: nobody depends on it
    kept = tmp_path / "kept"
    shutil.move(source / "apps" / last, kept)
    with pytest.raises(SourceTreeError, match=rf"{last} .* is published \(release log entry"):
        site_build(source, out, 1)
    shutil.move(kept, source / "apps" / last)
    for version in sorted(p.name for p in (source / "apps" / last).iterdir() if p.is_dir()):
        record_standing(source, last, version, "takedown", "legal request")
    report = site_build(source, out, 1)
    assert report.log_appended == VERSIONS and report.apps_reused == APPS - 1
    assert not list((out / "apps" / last).glob("*/manifest.json"))
    shutil.rmtree(source / "apps" / last)
    report = site_build(source, out, 2)
    assert report.apps_reused == APPS - 1
    # Only the previous snapshot's content-addressed copies stay, for one more build.
    left = [p.relative_to(out).as_posix() for p in (out / "apps" / last).rglob("*") if p.is_file()]
    assert left and all(plain_path(p) is not None for p in left)
    assert report.log_appended == 0
    db = sqlite3.connect(tmp_path / CACHE_DIR / "out.sqlite")
    assert last not in {row[0] for row in db.execute("SELECT name FROM apps")}
    db.close()
    assert_same_as_cold(source, out, tmp_path, 2)


def test_lifecycle_changes_of_one_app_rerender_only_its_pages(source: Path, tmp_path: Path) -> None:
    """A yank, a deprecation and a takedown are log entries about one app, written by a
    change in its folder (lifecycle.toml): that app is planned again and its pages show
    them (History, takedown page); every other app is reused, and the output is still
    what a cold build makes."""
    out = tmp_path / "out"
    site_build(source, out)
    last = f"app-{APPS - 1:05d}"  # nobody depends on it
    versions = sorted(p.name for p in (source / "apps" / last).iterdir() if p.is_dir())
    other = (out / "apps/app-00002/index.html").read_bytes()
    record_standing(source, last, versions[0], "takedown", "legal request")
    record_standing(source, last, versions[1], "deprecate", "old line", versions[2])
    record_standing(source, last, versions[2], "yank", "breaks on Windows")
    report = site_build(source, out, 1)
    assert (report.apps_reused, report.log_appended) == (APPS - 1, 3)
    page = (out / "apps" / last / "index.html").read_text()
    history = page[page.index('id="history-h"') :]
    assert all(f'data-action="{a}"' in history for a in ("takedown", "deprecate", "yank"))
    assert "breaks on Windows" in history and "legal request" in history
    gone = (out / "apps" / last / versions[0] / "index.html").read_text()
    assert "This version was taken down" in gone
    assert (out / "apps/app-00002/index.html").read_bytes() == other
    assert_same_as_cold(source, out, tmp_path, 1)
    again = site_build(source, out, 2)
    assert (again.apps_reused, again.files_written) == (APPS, 0)


def test_dependency_on_a_removed_app_is_still_refused(source: Path, tmp_path: Path) -> None:
    """The depending app is unchanged, so it is not read; its recorded dependencies are
    still checked against the apps that remain."""
    out = tmp_path / "out"
    site_build(source, out)
    needed = {
        line.split('"')[1]
        for path in (source / "apps").glob("*/*/release.toml")
        for line in path.read_text().splitlines()
        if line.startswith('"app-')
    }
    gone = sorted(needed)[0]
    shutil.rmtree(source / "apps" / gone)
    with pytest.raises(SourceTreeError, match=f"no app '{gone}' in this registry"):
        site_build(source, out, 1)


def test_hand_edited_page_of_an_unchanged_app_is_repaired(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    site_build(source, out)
    page = out / "apps/app-00002/index.html"
    good = page.read_bytes()
    page.write_bytes(good.replace(b"<html", b"<HTML", 1))
    report = site_build(source, out, 1)
    assert report.apps_reused == APPS - 1 and report.files_written == 1
    assert page.read_bytes() == good


def test_new_signing_key_replans_every_app(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    site_build(source, out)
    key_file = tmp_path / "key"
    new = write_new_key_file(key_file)
    (source / "keys").mkdir()
    (source / "keys" / "rotate.json").write_bytes(
        make_rotation(
            development_key(), new, "https://registry.example.com/", "2026-01-15T12:00:00Z"
        )
    )
    report = site_build(source, out, 1, key_file=key_file)
    assert report.apps_reused == 0
    assert report.files_written > APPS * VERSIONS  # every manifest signed again
    assert site_build(source, out, 2, key_file=key_file).apps_reused == APPS
    assert_same_as_cold(source, out, tmp_path, 2, key_file=key_file)


def test_other_site_options_or_no_site_replan_every_app(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    site_build(source, out)
    live = (site_generator(SiteOptions(live_reload=True)),)
    assert site_build(source, out, 1, generators=live).apps_reused == 0
    assert site_build(source, out, 2, generators=live).apps_reused == APPS
    bare = site_build(source, out, 3, generators=())
    assert bare.apps_reused == 0 and not (out / "apps/app-00001/index.html").exists()


def test_site_layout_change_replans_every_app(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records written by a site of an older page layout (SITE_LAYOUT, e.g. one Jinja
    page per version) are not reused: the new build renders every app again."""
    import appshelf.site.generator as site

    out = tmp_path / "out"
    layout = site.SITE_LAYOUT
    monkeypatch.setattr(site, "SITE_LAYOUT", layout - 1)
    site_build(source, out)
    assert site_build(source, out, 1).apps_reused == APPS
    monkeypatch.setattr(site, "SITE_LAYOUT", layout)
    assert site_build(source, out, 2).apps_reused == 0
    assert site_build(source, out, 3).apps_reused == APPS
    assert_same_as_cold(source, out, tmp_path, 3)


def test_template_override_change_rerenders_pages(source: Path, tmp_path: Path) -> None:
    overrides = source / "theme"
    overrides.mkdir()
    registry_toml = source / "registry.toml"
    registry_toml.write_text(registry_toml.read_text() + '\n[site]\noverrides = "theme"\n')
    out = tmp_path / "out"
    site_build(source, out)
    builtin = REPO_ROOT / "templates" / "app.html"
    (overrides / "app.html").write_text(
        builtin.read_text().replace("{% block content %}", "{% block content %}<p>OVERRIDE</p>", 1)
    )
    report = site_build(source, out, 1)
    assert report.apps_reused == 0
    assert b"OVERRIDE" in (out / "apps/app-00003/index.html").read_bytes()
    assert_same_as_cold(source, out, tmp_path, 1)


def test_damaged_record_is_a_miss(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    site_build(source, out)
    db = sqlite3.connect(tmp_path / CACHE_DIR / "out.sqlite")
    db.execute("UPDATE apps SET payload = ? WHERE name = 'app-00001'", (b'{"salt": "x"}',))
    db.execute("UPDATE apps SET crc = 0 WHERE name = 'app-00002'")
    db.commit()
    db.close()
    report = site_build(source, out, 1)
    assert (report.apps_reused, report.files_written) == (APPS - 2, 0)


def test_recent_edits_are_never_reused(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the test's shortcut, files seconds old make their app folder unmemoisable."""
    monkeypatch.setattr(filestat, "RACY_NS", 2_000_000_000)
    out = tmp_path / "out"
    site_build(source, out)
    assert site_build(source, out, 1).apps_reused == 0


def test_new_file_in_a_version_folder_of_an_unchanged_app_is_seen(
    source: Path, tmp_path: Path
) -> None:
    """Adding a file moves its folder's stat key, which the record holds: the app is
    read again, and the new file is reported like any other."""
    out = tmp_path / "out"
    site_build(source, out)
    version = sorted(p for p in (source / "apps/app-00005").iterdir() if p.is_dir())[0]
    (version / "stray.tar.gz").write_bytes(b"not the artifact")
    with pytest.raises(SourceTreeError, match="several files"):
        site_build(source, out, 1)


def test_app_folder_with_a_symlink_is_never_reused(source: Path, tmp_path: Path) -> None:
    """A symlink's target can change without its own stat key moving."""
    readme = source / "apps/app-00006/README.md"
    readme.symlink_to(source / "registry.toml")  # inside the tree, so the build accepts it
    out = tmp_path / "out"
    site_build(source, out)
    assert site_build(source, out, 1).apps_reused == APPS - 1


# Reuse is one plug-in (builder/reuse.py): the stages ask one `Reuse` value.


def test_none_knows_nothing(source: Path) -> None:
    """`Reuse.none()` reads every app and hashes every artifact, every time."""
    reuse = Reuse.none()
    for _ in range(2):
        tree = reuse.read_tree(source, None)
        stats = HashStats()
        hashes = reuse.hash(tree, stats, None)
        assert (len(tree.apps), tree.unchanged, reuse.reused) == (APPS, [], {})
        assert stats.files_read == len(hashes) == APPS * VERSIONS
    reuse.close()


def test_an_output_cache_vouches_for_every_unchanged_app(source: Path, tmp_path: Path) -> None:
    """After a build, the output's cache says every app is unchanged (not read, not hashed);
    after an edit, only that app is read again."""
    out = tmp_path / "out"
    generators = (site_generator(),)
    build(source, out, now=FIXED_NOW, generators=generators)
    options = BuildOptions(generators=generators)
    reuse = Reuse.for_build(source, out, options, None)
    try:
        tree = reuse.read_tree(source, None)
        stats = HashStats()
        assert reuse.hash(tree, stats, None) == {}
        assert (len(tree.apps), len(tree.unchanged), stats.files_read) == (0, APPS, 0)
        assert sorted(reuse.reused) == sorted(app.key for app in tree.unchanged)
        assert reuse.needs_reread("0" * 64)  # another key: every app is read again
        again = reuse.read_tree(source, None, again=True)
        assert (len(again.apps), again.unchanged, reuse.reused) == (APPS, [], {})
    finally:
        reuse.close()


def test_no_cache_and_a_warm_cache_give_the_same_bytes(source: Path, tmp_path: Path) -> None:
    """The same builds, once with the cache (apps reused) and once with none (cold each
    time): the output folders are byte-identical."""
    warm, cold = tmp_path / "warm", tmp_path / "cold"
    generators = (site_generator(),)
    for out, cache in ((warm, True), (cold, False)):
        build(source, out, now=FIXED_NOW, generators=generators, cache=cache)
    app_toml = source / "apps/app-00004/app.toml"
    app_toml.write_text(app_toml.read_text().replace('name = "', 'name = "Renamed '))
    reports = [
        build(source, out, now=FIXED_NOW, generators=generators, cache=cache)
        for out, cache in ((warm, True), (cold, False))
    ]
    assert (reports[0].apps_reused, reports[1].apps_reused) == (APPS - 1, 0)
    assert current_files(warm, frozenset()) == current_files(cold, frozenset())


@settings(max_examples=500, deadline=None)
@given(
    names=st.lists(
        st.one_of(
            st.sampled_from(["apps/k/app.json", "apps/k/1.0.0/manifest.json", "apps/k/..", ""]),
            st.text(alphabet="apsk/.x", max_size=14),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_record_name_check_is_the_per_name_rule(names: list[str]) -> None:
    """`_all_below` (string searches) says what the loop it replaced said: every name
    under apps/k/ and no ".." component."""
    expected = all(n.startswith("apps/k/") and ".." not in n.split("/") for n in names)
    assert _all_below("\n".join(names), len(names), "apps/k/") == expected
