"""Change detection by content where the source is a git work tree (source/gitstate.py).

Real repositories and real `git clone`s in tmp_path. No stat shortcut here: files are
seconds old, so stat keys never vouch for them, and whatever is reused is reused because
git vouched for it. Every scenario ends with the output compared byte for byte with a
cold build of the same source (test_memo.py's check).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appshelf import filestat
from appshelf.builder.cache import BuildCache
from appshelf.builder.pipeline import BuildReport
from appshelf.deploy.http import HttpSource
from appshelf.errors import OutputError, SourceTreeError
from appshelf.filehash import BlobIds, HashStats, hash_files
from appshelf.formats.buildstate import STATE_FILE
from appshelf.source.gitstate import read_git_apps
from conftest import REPO_ROOT, StaticServer
from test_memo import APPS, VERSIONS, assert_same_as_cold, files, site_build

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import generate

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(cwd: Path, *argv: str) -> str:
    result = subprocess.run(
        ["git", *argv],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def commit_all(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture(params=["", "registry"], ids=["at-top", "in-subfolder"])
def origin(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A committed registry: at the top of its repository, or in a subfolder of it."""
    repo = tmp_path / "origin"
    root = repo / request.param if request.param else repo
    generate.generate_small(root, APPS, VERSIONS, seed=3)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "registry")
    return root


def clone_of(root: Path, tmp_path: Path) -> Path:
    """A fresh clone (new inodes and times for every file); the registry in it."""
    repo = Path(git(root, "rev-parse", "--show-toplevel").strip())
    prefix = git(root, "rev-parse", "--show-prefix").strip()
    target = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(target))
    return target / prefix if prefix else target


def reread(report: BuildReport) -> int:
    return report.apps - report.apps_reused


def test_fresh_clone_of_an_unchanged_tree_reuses_every_app(origin: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = site_build(origin, out)
    assert (first.apps_reused, first.artifacts_hashed) == (0, APPS * VERSIONS)
    clone = clone_of(origin, tmp_path)
    shutil.rmtree(origin)  # nothing of the first work tree is left
    again = site_build(clone, out, 1)
    assert (again.apps_reused, again.artifacts_hashed, again.files_written) == (APPS, 0, 0)
    cold = tmp_path / "cold"
    site_build(clone, cold)  # a cold build of the same source at the first build's time
    assert files(cold) == files(out)
    assert_same_as_cold(clone, out, tmp_path, 1)


def test_one_more_version_in_a_clone_reads_that_app_and_hashes_one_artifact(
    origin: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    site_build(origin, out)
    clone = clone_of(origin, tmp_path)
    generate.add_version(clone, "app-00007", "50.0.0")
    commit_all(clone)
    report = site_build(clone, out, 1)
    assert (reread(report), report.artifacts_hashed) == (1, 1)
    assert (out / "apps/app-00007/50.0.0/index.html").is_file()
    assert_same_as_cold(clone, out, tmp_path, 1)
    # And the next build of that clone reads nothing.
    report = site_build(clone, out, 2)
    assert (report.apps_reused, report.artifacts_hashed) == (APPS, 0)


def _modify(app: Path) -> None:
    toml = app / "app.toml"
    toml.write_text(toml.read_text().replace('name = "', 'name = "Renamed '))


def _untracked(app: Path) -> None:
    (app / "README.md").write_text("# Untracked readme\n")


def _ignored(app: Path) -> None:
    (app / ".gitignore").write_text("README.md\n")
    git(app, "add", ".gitignore")
    git(app, "commit", "-q", "-m", "ignore READMEs")
    (app / "README.md").write_text("# Ignored readme\n")


def _deleted(app: Path) -> None:
    (app / "icon.svg").unlink()


def _staged(app: Path) -> None:
    _modify(app)
    git(app, "add", "app.toml")


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (_modify, "Renamed "),
        (_staged, "Renamed "),
        (_untracked, "Untracked readme"),
        (_ignored, "Ignored readme"),
        (_deleted, None),
    ],
    ids=["modified", "staged", "untracked", "ignored", "deleted"],
)
def test_a_change_git_has_not_committed_makes_the_app_be_read(
    origin: Path, tmp_path: Path, change: object, expect: str | None
) -> None:
    app = origin / "apps/app-00006"
    assert (app / "icon.svg").is_file() and not (app / "README.md").exists()
    out = tmp_path / "out"
    site_build(origin, out)
    assert (out / "apps/app-00006/icon.svg").is_file()
    change(app)  # type: ignore[operator]
    report = site_build(origin, out, 1)
    assert reread(report) == 1
    page = (out / "apps/app-00006/index.html").read_text()
    if expect is not None:
        assert expect in page
    else:
        assert not (out / "apps/app-00006/icon.svg").exists()
    assert_same_as_cold(origin, out, tmp_path, 1)


def test_an_empty_folder_git_cannot_see_is_still_refused(origin: Path, tmp_path: Path) -> None:
    """git does not track folders: an empty version folder is found all the same."""
    out = tmp_path / "out"
    site_build(origin, out)
    (origin / "apps/app-00003/9.9.9").mkdir()
    with pytest.raises(SourceTreeError, match="no artifact file"):
        site_build(origin, out, 1)


def test_converted_checkouts_and_links_are_not_vouched_for(origin: Path, tmp_path: Path) -> None:
    """A file git converts on checkout is not its blob; a symlink's target is not in the
    tree id: such apps get no git information (and fall back to stat keys)."""
    (origin / "apps/app-00001/.gitattributes").write_text("*.toml eol=crlf\n")
    (origin / "apps/app-00004/notes.txt").symlink_to("app.toml")
    commit_all(origin)
    apps = read_git_apps(origin.resolve())
    assert apps is not None
    assert "eol=crlf" in apps.refused["app-00001"]
    assert "mode 120000" in apps.refused["app-00004"]
    assert set(apps.trees) == {generate.app_key(i) for i in range(APPS)} - {
        "app-00001",
        "app-00004",
    }
    git(origin, "config", "core.autocrlf", "true")
    assert read_git_apps(origin.resolve()) is None
    git(origin, "config", "core.autocrlf", "false")
    assert read_git_apps(origin.resolve()) is not None
    # A filter (Git LFS, say): git status would run its program, so git is not asked.
    (origin / "apps/app-00002/.gitattributes").write_text("*.tar.gz filter=lfs\n")
    assert read_git_apps(origin.resolve()) is None


def test_not_a_git_repository_uses_stat_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(filestat, "RACY_NS", -(10**18))  # seconds-old files count as settled
    source = tmp_path / "source"
    generate.generate_small(source, APPS, VERSIONS, seed=3)
    assert read_git_apps(source.resolve()) is None
    out = tmp_path / "out"
    site_build(source, out)
    with caplog.at_level(logging.DEBUG, logger="appshelf.build"):
        report = site_build(source, out, 1)
    assert report.apps_reused == APPS
    assert "app app-00000: reused (stat keys unchanged)" in caplog.messages


def test_reuse_decisions_are_logged(
    origin: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    site_build(origin, out)
    _modify(origin / "apps/app-00006")
    with caplog.at_level(logging.DEBUG, logger="appshelf.build"):
        site_build(origin, out, 1)
    assert "app app-00000: reused (git tree unchanged)" in caplog.messages
    assert "app app-00006: not reused (its source folder changed)" in caplog.messages
    assert any("app.toml differs from HEAD" in m for m in caplog.messages)


def test_a_broken_git_falls_back_to_stat_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `.git` that git cannot use, and a git that prints nonsense or hangs: no git
    information, no traceback, and the build reuses by stat keys as before."""
    monkeypatch.setattr(filestat, "RACY_NS", -(10**18))
    source = tmp_path / "source"
    generate.generate_small(source, APPS, VERSIONS, seed=3)
    (source / ".git").write_text("gitdir: /nonexistent/elsewhere\n")
    assert read_git_apps(source.resolve()) is None
    out = tmp_path / "out"
    site_build(source, out)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    fake.write_text("#!/bin/sh\nprintf 'registry/\\n\\0\\377 nonsense\\0'\n")
    fake.chmod(0o755)
    assert read_git_apps(source.resolve()) is None
    assert site_build(source, out, 1).apps_reused == APPS
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    assert read_git_apps(source.resolve(), timeout=0.5) is None


def test_a_blob_row_is_stored_only_for_the_bytes_of_that_blob(tmp_path: Path) -> None:
    """The blob id of what was hashed is computed in the same pass: a blob id git gave
    for content that changed since (a race with an edit) is not tied to other bytes."""
    cache = BuildCache.for_output(tmp_path / "out")
    path = tmp_path / "artifact.tar.gz"
    path.write_bytes(b"the artifact")
    right = git(tmp_path, "hash-object", str(path)).strip()
    wrong = "0" * 40
    stats = HashStats()
    got = hash_files([path], cache=cache, stats=stats, blobs=BlobIds(cache, {path: wrong}))
    assert cache.load_blobs() == {}
    assert got[path].sha256 == hashlib.sha256(b"the artifact").hexdigest()
    hash_files([path], cache=cache, blobs=BlobIds(cache, {path: right}))
    assert cache.load_blobs() == {right: (got[path].sha256, len(b"the artifact"))}
    copy = tmp_path / "elsewhere.tar.gz"  # another path, same content: not read
    shutil.copyfile(path, copy)
    stats = HashStats()
    again = hash_files([copy], cache=cache, stats=stats, blobs=BlobIds(cache, {copy: right}))
    assert (again[copy], stats.files_read) == (got[path], 0)
    cache.close()


def test_a_fresh_clone_built_from_previous_url_hashes_no_unchanged_artifact(
    origin: Path, tmp_path: Path
) -> None:
    """A CI runner: a new clone, an empty output folder and no cache, and the registry
    published on a web host. The build state published with it (log/state.json, pinned
    by the snapshot) gives every unchanged artifact's digest by blob id."""
    with StaticServer(tmp_path / "live") as server:
        site_build(origin, server.root, base_url=server.url)
        assert (server.root / STATE_FILE).is_file()
        clone = clone_of(origin, tmp_path)
        for attempt in ("unchanged", "one more version"):
            if attempt == "one more version":
                generate.add_version(clone, "app-00007", "50.0.0")
                commit_all(clone)
            source = HttpSource(server.url)
            try:
                ci = tmp_path / f"ci-{attempt}" / "out"
                report = site_build(clone, ci, 1, base_url=server.url, previous_source=source)
            finally:
                source.close()
            assert report.artifacts_hashed == (0 if attempt == "unchanged" else 1)
            cold = tmp_path / f"cold-{attempt}" / "out"  # reads and hashes everything
            cold_report = site_build(clone, cold, 1, base_url=server.url, previous=server.root)
            assert cold_report.artifacts_hashed == APPS * VERSIONS + (attempt != "unchanged")
            assert files(cold) == files(ci)


def test_a_tampered_build_state_is_refused(origin: Path, tmp_path: Path) -> None:
    """The state is used only as the snapshot pins it."""
    with StaticServer(tmp_path / "live") as server:
        site_build(origin, server.root, base_url=server.url)
        for path in server.root.glob("log/*state.json"):  # the file and its pinned copy
            data = bytearray(path.read_bytes())
            at = data.index(b'"sha256":"') + len(b'"sha256":"')
            data[at] = ord("0") if data[at] != ord("0") else ord("1")  # same length
            path.write_bytes(bytes(data))
        source = HttpSource(server.url)
        try:
            with pytest.raises(OutputError, match=r"state\.json"):
                site_build(
                    clone_of(origin, tmp_path),
                    tmp_path / "ci",
                    1,
                    base_url=server.url,
                    previous_source=source,
                )
        finally:
            source.close()
