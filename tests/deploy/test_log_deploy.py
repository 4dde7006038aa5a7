"""Issue 10's "Why" cases on the `build --deploy` path, against SeaweedFS: the bucket is the
only memory (every run starts from an empty folder, as in CI). Each change to a published
version is refused with exit 1, naming app, version, field and both values, before
anything is written locally or uploaded; a yank goes through as a log entry and the
yanked version still installs. (The other paths: tests/test_log_paths.py.)
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from appshelf.cli import main
from appshelf.client import RegistryClient, trusted_keys
from appshelf.formats.log import LifecycleEntry, decode_entry
from appshelf.signing.keys import development_key, write_new_key_file
from deploy.conftest import SeaweedS3
from log_helpers import log_entries

pytestmark = pytest.mark.s3
APP, VERSION = "kv-store", "1.1.1"
FOLDER = f"apps/{APP}/{VERSION}"
ARTIFACT = f"{FOLDER}/{APP}-{VERSION}.tar.gz"
DEV_SEED = bytes(development_key().signing_key).hex()


class Deployed:
    """A registry deployed to s3://bucket/r, rebuilt with `build --deploy` into new folders."""

    def __init__(self, seaweed: SeaweedS3, bucket: str, source: Path, work: Path):
        self.seaweed, self.bucket, self.source, self.work = seaweed, bucket, source, work
        self.base = f"{seaweed.endpoint}/{bucket}/r/"
        self.runs = 0

    def build(self, env: dict[str, str] | None = None) -> tuple[Result, Path]:
        self.runs += 1
        output = self.work / f"run-{self.runs}"
        args = ["build", str(self.source), "-o", str(output), "--no-site", "--base-url"]
        args += [self.base, "--deploy", f"s3://{self.bucket}/r"]
        args += ["--endpoint-url", self.seaweed.endpoint]
        result = CliRunner().invoke(main, args, env={"APPSHELF_SIGNING_KEY": "", **(env or {})})
        return result, output

    def objects(self) -> dict[str, Any]:
        listing = self.seaweed.client().list_objects_v2(Bucket=self.bucket)
        return {o["Key"]: (o["ETag"], o["Size"]) for o in listing.get("Contents", [])}

    def refused(self, *needles: str, env: dict[str, str] | None = None) -> str:
        before = self.objects()
        result, output = self.build(env)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ") and "Traceback" not in result.output
        for needle in needles:
            assert needle in result.output, result.output
        assert not output.exists() and self.objects() == before
        return result.output


@pytest.fixture
def deployed(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> Deployed:
    return Deployed(seaweed, bucket, example_source, tmp_path)


def _first_publish(deployed: Deployed, env: dict[str, str] | None = None) -> Path:
    result, output = deployed.build(env)
    assert result.exit_code == 0, result.output
    return output


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_moved_away_version_is_refused(deployed: Deployed, tmp_path: Path) -> None:
    _first_publish(deployed)
    shutil.move(deployed.source / FOLDER, tmp_path / "moved-away")
    deployed.refused(f"{APP} {VERSION}")


def test_version_put_back_with_other_bytes_is_refused(deployed: Deployed) -> None:
    _first_publish(deployed)
    artifact = deployed.source / ARTIFACT
    logged = _sha(artifact)
    artifact.write_bytes(b"other bytes under the same version")
    deployed.refused(ARTIFACT, f"{APP} {VERSION}", "artifact sha256", logged, _sha(artifact))


def test_build_without_the_key_names_the_missing_secret(deployed: Deployed) -> None:
    key_file = deployed.work / "registry.key"
    write_new_key_file(key_file)
    _first_publish(deployed, {"APPSHELF_SIGNING_KEY": key_file.read_text()})
    deployed.refused("$APPSHELF_SIGNING_KEY", "key_file", "--key-file")
    deployed.refused("development key", env={"APPSHELF_SIGNING_KEY": DEV_SEED})


def test_changed_dependencies_and_file_name_are_refused(deployed: Deployed) -> None:
    _first_publish(deployed)
    release = deployed.source / FOLDER / "release.toml"
    original = release.read_text()
    release.write_text(original + '\n[dependencies]\nhttp-client = "^9.0"\n')
    deployed.refused(f"{APP} {VERSION}", "dependencies", "{'http-client': '^9.0'}")
    release.write_text(original)
    artifact = deployed.source / ARTIFACT
    artifact.rename(artifact.with_name(f"{APP}-{VERSION}-renamed.tar.gz"))
    deployed.refused(f"{APP} {VERSION}", "artifact file name", f"'{APP}-{VERSION}-renamed.tar.gz'")


def test_yanked_version_still_installs(deployed: Deployed, tmp_path: Path) -> None:
    first = _first_publish(deployed)
    before = log_entries(first)
    artifact_object = deployed.objects()[f"r/{ARTIFACT}"]
    result = CliRunner().invoke(
        main, ["yank", APP, VERSION, "--reason", "data loss", "--source", str(deployed.source)]
    )
    assert result.exit_code == 0, result.output
    second = _first_publish(deployed)
    after = log_entries(second)
    assert after[: len(before)] == before and len(after) == len(before) + 1
    yank = decode_entry(after[-1])
    assert isinstance(yank, LifecycleEntry) and (yank.action, yank.app) == ("yank", APP)
    assert deployed.objects()[f"r/{ARTIFACT}"] == artifact_object  # not re-uploaded
    client = RegistryClient(
        deployed.base,
        trusted_keys(allow_dev_key=True),
        allow_dev_key=True,
        state_dir=tmp_path / "s",
    )
    with client:
        assert client.entry(APP, VERSION).yanked == "data loss"
        download = client.download_manifest(client.manifest(APP, VERSION), tmp_path / "dl")
    assert download.path.read_bytes() == (first / ARTIFACT).read_bytes()
