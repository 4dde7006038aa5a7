"""The writer trusts nothing it finds beside the output (issue 13, the critical group).

The layout is the one `appshelf init` scaffolds: the repository is the source tree and
`_site` is built inside it, so every housekeeping name beside `_site` may have been
committed by someone else. Each case: refused with a clear error, exit 1 from the CLI,
nothing outside the tree touched, the output unchanged.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.builder import housekeeping, writer
from appshelf.cli import main
from appshelf.errors import OutputError
from conftest import EXAMPLE_REGISTRY, FIXED_NOW, build


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A registry repository, as a fresh CI clone has it."""
    target = tmp_path / "repo"
    shutil.copytree(EXAMPLE_REGISTRY, target)
    return target


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the tree that no build may touch."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.txt").write_text("years of work")
    (folder / "apps").mkdir()
    (folder / "apps" / "evil.html").write_text("<script>alert(1)</script>")
    return folder


def _tree(root: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


def _cli_build(repo: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["build", str(repo), "-o", str(repo / "_site"), "--no-site"], env={}
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.mark.parametrize("staging", ["ABSOLUTE", "../outside", ".appshelf-tmp-_site-1/../.."])
def test_committed_journal_with_a_foreign_staging_path_is_refused(
    repo: Path, outside: Path, staging: str
) -> None:
    build(repo, repo / "_site")
    before, outside_before = _tree(repo / "_site"), _tree(outside)
    journal = repo / ".appshelf-journal-_site.json"
    journal.write_text(
        json.dumps(
            {
                "staging": str(outside) if staging == "ABSOLUTE" else staging,
                "write": ["apps/evil.html"],
                "remove": ["registry.json"],
            }
        )
    )
    code, output = _cli_build(repo)
    assert code == 1
    assert "journal" in output and "nothing was changed" in output
    assert _tree(outside) == outside_before
    assert _tree(repo / "_site") == before
    assert journal.exists()  # left for the user to look at


def test_committed_journal_with_the_derived_name_is_still_refused(
    repo: Path, outside: Path
) -> None:
    """A journal committed to git cannot carry this checkout's device and inode numbers."""
    build(repo, repo / "_site")
    before = _tree(repo / "_site")
    staging = repo / ".appshelf-tmp-_site-4242"
    (staging / "apps").mkdir(parents=True)
    (staging / "apps" / "evil.html").write_text("<script>alert(1)</script>")
    fake_ids = [0, 0]
    (repo / ".appshelf-journal-_site.json").write_text(
        json.dumps(
            {
                "staging": staging.name,
                "staging_id": fake_ids,
                "target_id": fake_ids,
                "write": ["apps/evil.html"],
                "remove": ["registry.json"],
            }
        )
    )
    with pytest.raises(OutputError, match="was written for another output folder"):
        build(repo, repo / "_site")
    assert _tree(repo / "_site") == before


def test_journal_with_the_old_format_is_refused(repo: Path) -> None:
    build(repo, repo / "_site")
    staging = repo / ".appshelf-tmp-_site-4242"
    staging.mkdir()
    (repo / ".appshelf-journal-_site.json").write_text(
        json.dumps({"staging": staging.name, "write": [], "remove": ["registry.json"]})
    )
    with pytest.raises(OutputError, match="cannot be read as a journal"):
        build(repo, repo / "_site")
    assert (repo / "_site" / "registry.json").exists()


def test_old_swap_folder_linked_outside_is_never_renamed_onto_the_output(
    repo: Path, outside: Path
) -> None:
    """A committed `.appshelf-old-_site-1 -> /outside` with no _site: the old cleanup
    renamed the link onto the output, then built into /outside, deleting its files."""
    os.symlink(outside, repo / ".appshelf-old-_site-1")
    outside_before = _tree(outside)
    code, output = _cli_build(repo)
    assert code == 1 and ".appshelf-old-_site-1" in output
    assert _tree(outside) == outside_before
    assert not (repo / "_site").exists()


def test_old_swap_folder_holding_a_link_never_reaches_the_site(repo: Path, outside: Path) -> None:
    old = repo / ".appshelf-old-_site-1"
    old.mkdir()
    os.symlink(outside, old / "leak")
    with pytest.raises(OutputError, match=r"only appshelf 0\.0 left behind"):
        build(repo, repo / "_site")
    assert not (repo / "_site").exists()


def test_a_link_committed_inside_the_output_is_removed_not_followed(
    repo: Path, outside: Path
) -> None:
    """A committed `_site/` (no cache in a fresh clone) holding links: the build removes
    the links (a Pages upload would follow them) and never writes through them."""
    site = repo / "_site"
    build(repo, site)
    shutil.rmtree(repo / ".appshelf-cache")
    os.symlink(outside, site / "leak")
    os.symlink(outside / "apps", site / "apps" / "kv-store" / "1.0.0" / "more")
    os.symlink(outside / "precious.txt", site / "apps" / "kv-store" / "notes.txt")
    outside_before = _tree(outside)
    build(repo, site, now=FIXED_NOW + timedelta(hours=1))
    assert _tree(outside) == outside_before
    links = [p for p in site.rglob("*") if p.is_symlink()]
    assert links == []
    assert (site / "apps" / "kv-store" / "app.json").is_file()


def test_staging_name_that_is_a_link_is_refused(repo: Path, outside: Path) -> None:
    build(repo, repo / "_site")
    os.symlink(outside, repo / ".appshelf-tmp-_site-77")
    outside_before = _tree(outside)
    with pytest.raises(OutputError, match="not a real folder"):
        build(repo, repo / "_site", now=FIXED_NOW + timedelta(hours=1))
    assert _tree(outside) == outside_before
    assert (repo / ".appshelf-tmp-_site-77").is_symlink()


def test_output_that_is_a_link_is_refused(repo: Path, outside: Path) -> None:
    os.symlink(outside, repo / "_site")
    outside_before = _tree(outside)
    code, output = _cli_build(repo)
    assert code == 1 and "symbolic link" in output
    assert _tree(outside) == outside_before


def test_cache_folder_that_is_a_link_is_refused(repo: Path, outside: Path) -> None:
    os.symlink(outside, repo / ".appshelf-cache")
    outside_before = _tree(outside)
    with pytest.raises(OutputError, match="build cache"):
        build(repo, repo / "_site")
    assert _tree(outside) == outside_before


def test_genuine_journal_whose_staged_file_became_a_link_is_refused(
    repo: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real interrupted commit, then a staged file swapped for a link: refused, since
    moving it would publish a link."""
    site = repo / "_site"
    build(repo, site)
    (repo / "apps" / "kv-store" / "app.toml").write_text(
        (repo / "apps" / "kv-store" / "app.toml").read_text().replace("durable", "sturdy", 1)
    )
    monkeypatch.setattr(writer, "_commit", lambda *args: None)  # killed right after the journal
    build(repo, site, now=FIXED_NOW + timedelta(hours=1))
    monkeypatch.undo()
    plan = json.loads((repo / ".appshelf-journal-_site.json").read_text())
    staged = repo / plan["staging"] / plan["write"][0]
    staged.unlink()
    os.symlink(outside / "precious.txt", staged)
    with pytest.raises(OutputError, match="is a link in a staging folder"):
        build(repo, site, now=FIXED_NOW + timedelta(hours=1))


def test_genuine_interrupted_commit_is_still_rolled_forward(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = repo / "_site"
    build(repo, site)
    (repo / "apps" / "kv-store" / "app.toml").write_text(
        (repo / "apps" / "kv-store" / "app.toml").read_text().replace("durable", "sturdy", 1)
    )
    monkeypatch.setattr(writer, "_commit", lambda *args: None)
    build(repo, site, now=FIXED_NOW + timedelta(hours=1))
    monkeypatch.undo()
    assert (repo / ".appshelf-journal-_site.json").exists()
    assert writer.recover_interrupted(site)
    assert not (repo / ".appshelf-journal-_site.json").exists()
    assert b"sturdy" in (site / "apps" / "kv-store" / "app.json").read_bytes()


def test_two_builds_of_one_output_do_not_interleave(repo: Path) -> None:
    site = repo / "_site"
    build(repo, site)
    lock = repo / ".appshelf-lock-_site"
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another build would hold it
        code, output = _cli_build(repo)
        assert code == 1 and "another appshelf build is writing this output" in output
    finally:
        os.close(fd)
    assert _cli_build(repo)[0] == 0


def test_lock_file_that_is_a_link_is_refused(repo: Path, outside: Path) -> None:
    os.symlink(outside / "precious.txt", repo / ".appshelf-lock-_site")
    with pytest.raises(OutputError, match="symbolic link"):
        build(repo, repo / "_site")
    assert (outside / "precious.txt").read_text() == "years of work"


def test_scaffold_gitignore_lists_every_housekeeping_name() -> None:
    from importlib.resources import files

    lines = (files("appshelf.scaffold") / "gitignore").read_text().splitlines()
    for name in (*housekeeping.IGNORED_NAMES, ".appshelf-cache/", "_site/"):
        assert name in lines, name
