"""Bad input: one clear line per problem (file and field), all at once, exit 1, no traceback,
and nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.cli import main


def run_build(source: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["build", str(source), "-o", str(out)], env={"SOURCE_DATE_EPOCH": "1767225600"}
    )
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def test_every_problem_is_listed_at_once(example_source: Path, tmp_path: Path) -> None:
    apps = example_source / "apps"
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "top secret")
    write(apps / "Bad_Key" / "app.toml", 'name = "x"\ndescription = "y"\n')
    write(apps / "hello-world" / "v3.0.0" / "a.tar.gz", b"x")
    write(apps / "hello-world" / "1.1.0+build.7" / "a.tar.gz", b"x")
    write(apps / "kv-store" / "5.0.0" / "release.toml", 'notes = "no artifact"\n')
    write(apps / "kv-store" / "6.0.0" / "a.tar.gz", b"a")
    write(apps / "kv-store" / "6.0.0" / "b.tar.gz", b"b")
    write(
        apps / "slack-notify" / "app.toml",
        'name = "Slack"\ndescription = "d"\ncolour = "#FFFFFF"\ncolor = "blue"\n',
    )
    write(
        apps / "jira-sync" / "4.0.0" / "release.toml",
        'artifact_url = "http://example.com/a.tar.gz"\nsha256 = "' + "a" * 64 + '"\nsize = 1\n',
    )
    write(
        apps / "jira-sync" / "5.0.0" / "release.toml",
        'artifact_url = "https://example.com/a.tar.gz"\n',
    )
    (apps / "http-client" / "3.0.0").mkdir()
    os.symlink(outside / "secret.txt", apps / "http-client" / "3.0.0" / "leak.tar.gz")
    os.symlink(outside, apps / "escaped")
    write(apps / "http-client" / "4.0.0" / "release.toml" / "oops", "a folder, not a file")
    write(apps / "http-client" / "4.0.0" / "x.tar.gz", b"x")
    write(
        apps / "http-client" / "5.0.0" / "release.toml",
        'dependencies = { nope = "^1" }\nartifact = "../../../etc/passwd"\n',
    )
    write(apps / "noconfig" / "1.0.0" / "a.tar.gz", b"x")

    out = tmp_path / "out"
    code, output = run_build(example_source, out)
    assert code == 1
    assert "Traceback" not in output
    assert output.startswith("Error: the source tree has 14 problems:")
    expected = [
        "apps/Bad_Key: invalid app key 'Bad_Key'",
        "apps/hello-world/v3.0.0: folder name 'v3.0.0' is not a SemVer 2.0.0 version (drop the leading 'v')",
        "apps/hello-world/1.1.0+build.7: duplicate version: '1.1.0+build.7' has the same precedence as '1.1.0'",
        "apps/kv-store/5.0.0: no artifact file",
        "apps/kv-store/6.0.0: several files (a.tar.gz, b.tar.gz)",
        "apps/slack-notify/app.toml: colour: unknown key",
        "apps/slack-notify/app.toml: color: must be #RRGGBB, got 'blue'",
        "apps/jira-sync/4.0.0/release.toml: artifact_url: must be an https:// URL, got 'http://example.com/a.tar.gz'",
        "apps/jira-sync/5.0.0/release.toml: (file): an external artifact_url must be pinned: sha256 and size required (`appshelf sync` records them: docs/import.md)",
        "apps/http-client/3.0.0/leak.tar.gz: symlink points outside the source tree",
        "apps/escaped: symlink points outside the source tree",
        "apps/http-client/4.0.0/release.toml: cannot read (Is a directory)",
        "apps/http-client/5.0.0/release.toml: artifact: must be a plain file name in the version folder, got '../../../etc/passwd'",
        "apps/noconfig/app.toml: missing: every app folder needs an app.toml",
    ]
    for line in expected:
        assert line in output, f"missing: {line}\n---\n{output}"
    assert not out.exists()


def test_names_are_matched_whole(example_source: Path, tmp_path: Path) -> None:
    """A trailing newline does not slip past a `...$` pattern (names end up in URLs);
    spaces and non-ASCII letters are refused by the same rule."""
    apps = example_source / "apps"
    write(apps / "kv-store" / "7.0.0" / "kv-store-7.0.0.tar.gz\n", b"x")
    write(apps / "kv-store" / "8.0.0" / "kv store 8.tar.gz", b"x")
    write(apps / "kv-store" / "9.0.0" / "kv-st\u00f6re.tar.gz", b"x")
    write(apps / "newline\n" / "app.toml", 'name = "x"\ndescription = "y"\n')
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1 and "the source tree has 4 problems" in output, output
    for version in ("7.0.0", "8.0.0", "9.0.0"):
        assert f"apps/kv-store/{version}/kv" in output
    assert output.count("artifact file name must be [A-Za-z0-9._+-]") == 3
    assert "invalid app key 'newline\\n'" in output


def test_external_artifact_needs_a_file_name(example_source: Path, tmp_path: Path) -> None:
    """Consumers save an external artifact under its URL's last segment: it must be a name."""
    pin = 'sha256 = "' + "a" * 64 + '"\nsize = 1\n'
    for version, url in (("7.0.0", "dl/kv.tar.gz?token=1"), ("8.0.0", "dl/kv%20store.tar.gz")):
        release = f'artifact_url = "https://example.com/{url}"\n{pin}'
        write(example_source / "apps/kv-store" / version / "release.toml", release)
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1 and "the source tree has 2 problems" in output, output
    assert (
        "apps/kv-store/7.0.0/release.toml: artifact_url: the last path segment "
        "'kv.tar.gz?token=1' is the artifact's file name" in output
    )
    assert (
        "apps/kv-store/8.0.0/release.toml: artifact_url: the last path segment 'kv%20store"
        in output
    )


def test_unknown_dependency_and_invalid_toml(example_source: Path, tmp_path: Path) -> None:
    write(
        example_source / "apps/kv-store/7.0.0/release.toml", 'dependencies = { nope = "^1.0.0" }\n'
    )
    write(example_source / "apps/kv-store/7.0.0/a.tar.gz", b"a")
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1
    assert (
        "apps/kv-store/7.0.0/release.toml: dependencies.nope: no app 'nope' in this registry"
        in output
    )
    write(example_source / "apps/kv-store/7.0.0/release.toml", "notes = 'unterminated\n")
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1 and "apps/kv-store/7.0.0/release.toml: invalid TOML" in output


def test_script_in_svg_icon_is_refused(example_source: Path, tmp_path: Path) -> None:
    write(
        example_source / "apps/hello-world/icon.svg",
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    )
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1
    assert (
        "apps/hello-world/icon.svg: SVG icon refused: line 1: element <script> is not allowed"
        in output
    )


def test_huge_config_file_is_refused(example_source: Path, tmp_path: Path) -> None:
    write(example_source / "apps/kv-store/app.toml", "# " + "x" * (2 << 20) + "\n")
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 1 and "apps/kv-store/app.toml: file is" in output and "the limit is" in output


def test_missing_registry_toml(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, output = run_build(tmp_path / "empty", tmp_path / "out")
    assert code == 1 and "registry.toml: missing" in output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_artifact(example_source: Path, tmp_path: Path) -> None:
    artifact = example_source / "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz"
    artifact.chmod(0)
    try:
        code, output = run_build(example_source, tmp_path / "out")
    finally:
        artifact.chmod(0o644)
    assert code == 1 and "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz: cannot read" in output


def test_changed_artifact_via_cli_exits_1(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_build(example_source, out)[0] == 0
    write(example_source / "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz", b"changed")
    code, output = run_build(example_source, out)
    assert code == 1 and "Published versions never change" in output and "Traceback" not in output
