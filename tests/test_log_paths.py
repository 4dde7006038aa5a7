"""Issue 10's "Why" cases, on every path a build can take to the published state: the
same output folder, `--previous`, `--previous-url` (a real HTTP server on 127.0.0.1) and a
fresh git clone of the source built with `--previous-url`. (`--deploy` against SeaweedFS:
tests/deploy/test_log_deploy.py.)

Each case is refused, naming the app, version and field with the logged and the new
value, and nothing is written; a yank is the one change that goes through, as a log
entry that leaves the release itself untouched.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from appshelf.builder import BuildReport
from appshelf.cli import main
from appshelf.client import RegistryClient, trusted_keys
from appshelf.deploy.http import HttpSource
from appshelf.errors import AppshelfError, OutputError, SigningKeyError, SourceTreeError
from appshelf.formats.log import LifecycleEntry, ReleaseEntry, decode_entry
from appshelf.signing.keys import development_key, parse_private_key, write_new_key_file
from appshelf.signing.releaselog import make_rotation
from conftest import FIXED_NOW, StaticServer, build
from log_helpers import log_entries

PATHS = ("same", "previous", "url", "clone")
APP, VERSION = "kv-store", "1.1.1"
FOLDER = f"apps/{APP}/{VERSION}"


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _git(*args: str, cwd: Path) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=m"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


class Paths:
    """One registry, published into a served folder, rebuilt through one path.

    `publish` builds into the served folder; `rebuild` builds through the path into a new
    output folder (for "same": into the served folder itself); `promote` makes a rebuilt
    output the published one, as a deploy would.
    """

    def __init__(self, kind: str, source: Path, work: Path, server: StaticServer):
        self.kind, self.source, self.work, self.server = kind, source, work, server
        self.published = server.root
        self.count = 0
        self.environ: dict[str, str] = {}

    def publish(self, **options: object) -> BuildReport:
        options.setdefault("environ", self.environ)
        return build(self.source, self.published, base_url=self.server.url, **options)

    def next_output(self) -> Path:
        if self.kind == "same":
            return self.published
        self.count += 1
        return self.work / f"out-{self.kind}-{self.count}"

    def build_source(self) -> Path:
        """The source the rebuild reads: a fresh clone of it for "clone"."""
        if self.kind != "clone":
            return self.source
        if not (self.source / ".git").exists():
            _git("init", "-q", cwd=self.source)
        _git("add", "-A", cwd=self.source)
        _git("commit", "-q", "--allow-empty", "-m", "change", cwd=self.source)
        clone = self.work / f"clone-{self.count}"
        shutil.rmtree(clone, ignore_errors=True)
        _git("clone", "-q", str(self.source), str(clone), cwd=self.work)
        return clone

    def where(self) -> dict[str, object]:
        if self.kind == "previous":
            return {"previous": self.published}
        if self.kind in ("url", "clone"):
            return {"previous_source": HttpSource(self.server.url)}
        return {}

    def rebuild(self, **options: object) -> tuple[BuildReport, Path]:
        output = self.next_output()
        options.setdefault("environ", self.environ)
        options.update(self.where())
        source = self.build_source()
        return build(source, output, base_url=self.server.url, **options), output

    def cli_args(self) -> list[str]:
        """`appshelf build` arguments for the same rebuild."""
        output = self.next_output()
        source = self.build_source()
        args = ["build", str(source), "-o", str(output), "--no-site"]
        args += ["--base-url", self.server.url]
        if self.kind == "previous":
            args += ["--previous", str(self.published)]
        elif self.kind in ("url", "clone"):
            args += ["--previous-url", self.server.url]
        return args

    def promote(self, output: Path) -> None:
        if output != self.published:
            shutil.rmtree(self.published)
            shutil.copytree(output, self.published)

    def nothing_written(self, before: dict[str, bytes]) -> None:
        assert _files(self.published) == before
        if self.kind != "same":
            assert not (self.work / f"out-{self.kind}-{self.count}").exists()


@pytest.fixture(params=PATHS)
def paths(request: pytest.FixtureRequest, example_source: Path, tmp_path: Path) -> Iterator[Paths]:
    with StaticServer(tmp_path / "www") as server:
        server.root.mkdir()
        yield Paths(request.param, example_source, tmp_path, server)


def _refused(paths: Paths, error: type[AppshelfError], *needles: str, **options: object) -> str:
    before = _files(paths.published)
    with pytest.raises(error) as caught:
        paths.rebuild(**options)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message
    paths.nothing_written(before)
    return message


def _cli_refused(paths: Paths, *needles: str, env: dict[str, str] | None = None) -> Result:
    before = _files(paths.published)
    result = CliRunner().invoke(
        main, paths.cli_args(), env={"APPSHELF_SIGNING_KEY": "", **(env or {})}
    )
    assert result.exit_code == 1, result.output
    assert "Error:" in result.output and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in result.output, result.output
    paths.nothing_written(before)
    return result


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# (a) a published version's folder moved away, then put back with other bytes


def test_moved_away_version_is_refused(paths: Paths) -> None:
    paths.publish()
    shutil.move(paths.source / FOLDER, paths.work / "moved-away")
    _refused(paths, SourceTreeError, f"{APP} {VERSION}")
    _cli_refused(paths, f"{APP} {VERSION}")


def test_version_put_back_with_other_bytes_is_refused(paths: Paths) -> None:
    paths.publish()
    artifact = paths.source / FOLDER / f"{APP}-{VERSION}.tar.gz"
    logged = _sha(artifact)
    shutil.move(paths.source / FOLDER, paths.work / "moved-away")
    shutil.copytree(paths.work / "moved-away", paths.source / FOLDER)
    artifact.write_bytes(b"other bytes under the same version")
    needles = (f"{APP} {VERSION}", "artifact sha256", logged, _sha(artifact))
    _refused(paths, SourceTreeError, f"{FOLDER}/{APP}-{VERSION}.tar.gz", *needles)
    _cli_refused(paths, *needles)


# (b) a build without the signing key over a registry built with a real key


def test_build_without_the_key_names_the_missing_secret(paths: Paths) -> None:
    key_file = paths.work / "registry.key"
    write_new_key_file(key_file)
    paths.environ = {"APPSHELF_SIGNING_KEY": key_file.read_text()}
    paths.publish()
    paths.environ = {}
    message = _refused(paths, SigningKeyError, "$APPSHELF_SIGNING_KEY", "--key-file")
    assert "key_file" in message
    _cli_refused(paths, "$APPSHELF_SIGNING_KEY", "--key-file")


# (c) changed dependencies, changed artifact file name


def test_changed_dependencies_are_refused(paths: Paths) -> None:
    paths.publish()
    release = paths.source / FOLDER / "release.toml"
    release.write_text(release.read_text() + '\n[dependencies]\nhttp-client = "^9.0"\n')
    needles = (f"{APP} {VERSION}", "dependencies", "{}", "{'http-client': '^9.0'}")
    _refused(paths, SourceTreeError, f"{FOLDER}/release.toml", *needles)
    _cli_refused(paths, *needles)


def test_changed_artifact_file_name_is_refused(paths: Paths) -> None:
    paths.publish()
    artifact = paths.source / FOLDER / f"{APP}-{VERSION}.tar.gz"
    artifact.rename(artifact.with_name(f"{APP}-{VERSION}-renamed.tar.gz"))
    needles = (
        f"{APP} {VERSION}",
        "artifact file name",
        f"'{APP}-{VERSION}.tar.gz'",
        f"'{APP}-{VERSION}-renamed.tar.gz'",
    )
    _refused(paths, SourceTreeError, *needles)
    _cli_refused(paths, *needles)


# (d) a yank is a log entry: the release is unchanged and still installs


def _release_index(entries: list[bytes]) -> int:
    for index, data in enumerate(entries):
        entry = decode_entry(data)
        if isinstance(entry, ReleaseEntry) and (entry.app, entry.version) == (APP, VERSION):
            return index
    raise AssertionError("not logged")


def test_yanked_version_still_installs(paths: Paths, tmp_path: Path) -> None:
    paths.publish()
    before = log_entries(paths.published)
    index = _release_index(before)
    artifact = (paths.published / FOLDER / f"{APP}-{VERSION}.tar.gz").read_bytes()
    result = CliRunner().invoke(
        main, ["yank", APP, VERSION, "--reason", "data loss", "--source", str(paths.source)]
    )
    assert result.exit_code == 0, result.output
    report, output = paths.rebuild()
    assert report.log_appended == 1
    after = log_entries(output)
    assert after[: len(before)] == before  # the release entry among them, byte for byte
    yank = decode_entry(after[-1])
    assert isinstance(yank, LifecycleEntry) and (yank.action, yank.reason) == ("yank", "data loss")
    assert (yank.app, yank.version) == (APP, VERSION)
    assert (output / FOLDER / f"{APP}-{VERSION}.tar.gz").read_bytes() == artifact
    paths.promote(output)
    keys = trusted_keys(allow_dev_key=True)
    client = RegistryClient(
        paths.server.url,
        keys,
        allow_dev_key=True,
        state_dir=tmp_path / "state",
        clock=lambda: FIXED_NOW,
    )
    entry = client.entry(APP, VERSION)
    assert entry.yanked == "data loss" and entry.log_index == index
    download = client.download_manifest(client.manifest(APP, VERSION), tmp_path / "dl")
    assert download.path.read_bytes() == artifact


# (e) the development key after a real key, whatever the flags


def _dev_seed() -> str:
    return bytes(development_key().signing_key).hex()


@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"production": True},
        {"resign": True},
        {"environ": {"APPSHELF_SIGNING_KEY": _dev_seed()}},
    ],
    ids=["no-key", "production", "resign", "dev-seed-given"],
)
def test_development_key_after_a_real_key_is_refused(
    paths: Paths, flags: dict[str, object]
) -> None:
    key_file = paths.work / "registry.key"
    write_new_key_file(key_file)
    paths.environ = {"APPSHELF_SIGNING_KEY": key_file.read_text()}
    paths.publish()
    paths.environ = {}
    _refused(paths, SigningKeyError, **flags)


def test_development_key_after_a_real_key_is_refused_by_the_cli(paths: Paths) -> None:
    key_file = paths.work / "registry.key"
    write_new_key_file(key_file)
    paths.environ = {"APPSHELF_SIGNING_KEY": key_file.read_text()}
    paths.publish()
    _cli_refused(paths, "development key", env={"APPSHELF_SIGNING_KEY": _dev_seed()})


def test_rotation_to_the_development_key_is_refused(paths: Paths) -> None:
    """Even a rotation statement signed by the real key cannot hand over to the development
    key, however it is given (here as its seed, as a CI secret would be)."""
    key_file = paths.work / "registry.key"
    real = write_new_key_file(key_file)
    paths.environ = {"APPSHELF_SIGNING_KEY": key_file.read_text()}
    paths.publish()
    dev_as_given = parse_private_key(_dev_seed(), "a seed")
    (paths.source / "keys").mkdir()
    (paths.source / "keys/rotate.json").write_bytes(
        make_rotation(real, dev_as_given, paths.server.url, "2026-01-15T12:00:00Z")
    )
    paths.environ = {"APPSHELF_SIGNING_KEY": _dev_seed()}
    _refused(paths, SigningKeyError, "development key")


def test_output_folder_restored_to_an_older_build_is_refused(
    example_source: Path, tmp_path: Path
) -> None:
    """The anchor is the log this build wrote, not the one it read: an output folder put
    back to the build before (a restored backup, an old gh-pages checkout) is a rollback,
    and building on it would let the version it forgot be published again, other bytes."""
    out = tmp_path / "out"
    build(example_source, out)
    older = shutil.copytree(out, tmp_path / "older")
    folder = example_source / "apps/slack-notify/9.0.0"
    folder.mkdir()
    (folder / "slack-notify-9.0.0.tar.gz").write_bytes(b"first bytes")
    assert build(example_source, out).log_appended == 1
    shutil.rmtree(out)
    shutil.copytree(older, out)
    (folder / "slack-notify-9.0.0.tar.gz").write_bytes(b"other bytes")
    before = _files(out)
    with pytest.raises(OutputError, match="rolled back or replaced"):
        build(example_source, out)
    assert _files(out) == before
