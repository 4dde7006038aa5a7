"""Hostile files in a source tree or as a key: FIFOs, devices, hard links, symlinks and
shared key files each end in one clear error naming the file, never a hang, an unbounded
read or a published device."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.signing.keys import write_new_key_file
from test_source_errors import run_build, write

HANG_GUARD = pytest.mark.timeout(30)  # the old code blocked forever on these


@HANG_GUARD
@pytest.mark.parametrize(
    "relative",
    [
        "registry.toml",
        "apps/kv-store/README.md",
        "apps/kv-store/app.toml",
        "apps/kv-store/1.0.0/release.toml",
        "apps/hello-world/icon.svg",
    ],
)
def test_fifo_input_is_refused(example_source: Path, tmp_path: Path, relative: str) -> None:
    path = example_source / relative
    path.unlink()
    os.mkfifo(path)
    out = tmp_path / "out"
    code, output = run_build(example_source, out)
    assert code == 1 and "Traceback" not in output
    assert f"{relative}: is a FIFO (named pipe), not a regular file" in output
    assert not out.exists()


def test_fifo_artifact_is_refused(example_source: Path, tmp_path: Path) -> None:
    artifact = example_source / "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz"
    artifact.unlink()
    os.mkfifo(artifact)
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1
    assert "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz: is a FIFO (named pipe)" in output


def test_character_device_readme_is_not_published(example_source: Path, tmp_path: Path) -> None:
    readme = example_source / "apps/kv-store/README.md"
    readme.unlink()
    os.mknod(readme, stat.S_IFCHR | 0o644, os.makedev(1, 3))  # /dev/null's numbers
    out = tmp_path / "out"
    code, output = run_build(example_source, out)
    assert code == 1
    assert "apps/kv-store/README.md: is a character device, not a regular file" in output
    assert not out.exists()


@pytest.mark.parametrize(
    "relative", ["apps/kv-store/README.md", "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz"]
)
def test_hard_linked_input_is_refused(example_source: Path, tmp_path: Path, relative: str) -> None:
    """An inode cannot tell where its other names are: the other may be outside the tree."""
    path = example_source / relative
    os.link(path, tmp_path / "other-name")
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1
    assert f"{relative}: has 2 hard links; inputs must not be hard links" in output


@HANG_GUARD
def test_symlinks_are_followed_only_to_regular_files_inside_the_tree(
    example_source: Path, tmp_path: Path
) -> None:
    """The rule: a symlink that stays in the tree is read as its target, and the target
    must pass every rule a plain file must (here a FIFO does not)."""
    apps = example_source / "apps"
    (apps / "kv-store/README.md").unlink()
    (apps / "kv-store/README.md").symlink_to("../slack-notify/README.md")
    out = tmp_path / "out"
    code, output = run_build(example_source, out)
    assert code == 0, output
    page = (out / "apps/kv-store/index.html").read_text()
    first_line = (apps / "slack-notify/README.md").read_text().splitlines()[0].lstrip("# ")
    assert first_line in page
    os.mkfifo(example_source / "pipe")
    (apps / "jira-sync/README.md").unlink()
    (apps / "jira-sync/README.md").symlink_to("../../pipe")
    code, output = run_build(example_source, tmp_path / "out2")
    assert code == 1
    assert "apps/jira-sync/README.md: is a FIFO (named pipe), not a regular file" in output


def key_build(source: Path, out: Path, key: Path, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["build", str(source), "-o", str(out), "--key-file", str(key)],
        env={"SOURCE_DATE_EPOCH": "1767225600", **env},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


@HANG_GUARD
def test_fifo_and_device_key_files_are_refused(example_source: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo, 0o600)
    code, output = key_build(example_source, tmp_path / "out", fifo)
    assert code == 1 and f"{fifo}: cannot use the signing key: is a FIFO (named pipe)" in output
    config = (example_source / "registry.toml").read_text()
    write(example_source / "registry.toml", config + 'key_file = "/dev/zero"\n')
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1
    assert "/dev/zero: cannot use the signing key: is a character device" in output


def test_key_file_larger_than_a_key_is_refused(example_source: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.key"
    big.write_bytes(b" " * (1 << 20))
    big.chmod(0o600)
    code, output = key_build(example_source, tmp_path / "out", big)
    assert code == 1 and f"{big}: cannot use the signing key: file is 1048576 bytes" in output


def test_key_file_others_may_read_is_refused(example_source: Path, tmp_path: Path) -> None:
    """Checked by permission bits, as ssh does (root could read it anyway)."""
    key_path = tmp_path / "registry.key"
    key = write_new_key_file(key_path)
    for mode in (0o640, 0o604, 0o620):
        key_path.chmod(mode)
        code, output = key_build(example_source, tmp_path / "out", key_path)
        assert code == 1, oct(mode)
        assert f"(mode {mode:04o}); run `chmod 600 {key_path}`" in output
        assert "APPSHELF_ALLOW_SHARED_KEY_FILE=1" in output
    key_path.chmod(0o444)  # a read-only secret mount, accepted when asked for
    code, output = key_build(
        example_source, tmp_path / "out", key_path, APPSHELF_ALLOW_SHARED_KEY_FILE="1"
    )
    assert code == 0, output
    assert key.keyid in output


@HANG_GUARD
@pytest.mark.parametrize("command", ["rotate-key", "deploy"])
def test_commands_that_read_only_the_settings_refuse_a_fifo_registry_toml(
    example_source: Path, tmp_path: Path, command: str
) -> None:
    """rotate-key and deploy read registry.toml under the build's rules too."""
    old, new = tmp_path / "old.key", tmp_path / "new.key"
    write_new_key_file(old)
    write_new_key_file(new)
    (example_source / "registry.toml").unlink()
    os.mkfifo(example_source / "registry.toml")
    args = {
        "rotate-key": [
            "rotate-key",
            str(example_source),
            "--old-key-file",
            str(old),
            "--new-key-file",
            str(new),
        ],
        "deploy": [
            "deploy",
            str(tmp_path),
            "s3://bucket",
            "--source",
            str(example_source),
            "--dry-run",
        ],
    }[command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "registry.toml: is a FIFO (named pipe), not a regular file" in result.output
    assert "Traceback" not in result.output


def test_a_deeply_nested_rotation_statement_is_no_traceback(
    example_source: Path, tmp_path: Path
) -> None:
    """keys/*.json is read before any signature check: 64 KiB of "[" is just not a
    statement (this build needs none), never a RecursionError."""
    (example_source / "keys").mkdir()
    write(example_source / "keys" / "deep.json", "[" * 60_000)
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 0 and "Traceback" not in output, output


@pytest.mark.parametrize("name", ["page.html", "Page.HTM", "icon.svg", "feed.xml", "a.xhtml"])
def test_artifact_a_browser_would_run_as_a_page_is_refused(
    example_source: Path, tmp_path: Path, name: str
) -> None:
    """An artifact named `*.html` (or SVG, XML...) sits on the registry's origin; Pages
    serves it as a page, so its script would run as the registry's site."""
    folder = example_source / "apps/kv-store/1.0.0"
    (folder / "kv-store-1.0.0.tar.gz").rename(folder / name)
    out = tmp_path / "out"
    code, output = run_build(example_source, out)
    assert code == 1 and "Traceback" not in output
    assert f"apps/kv-store/1.0.0/{name}: a browser would run this file as a page" in output
    assert not out.exists()
