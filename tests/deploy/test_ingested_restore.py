"""An ingested version that CI never committed back: the next `build --deploy` from a
fresh checkout restores it from the published registry (checked against the bucket's
record of what was ingested and the published release log), against SeaweedFS."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from deploy.conftest import SeaweedS3, appshelf_verify
from deploy.test_inbox import INBOX, Registry
from publish_helpers import signed_release

pytestmark = pytest.mark.s3
RECORD = "r/.appshelf/ingested.json"
WARNING = (
    "Warning: restored apps/kv/1.0.0 from the published registry (it was ingested from the "
    "inbox but is not in the source); commit it"
)


@pytest.fixture
def registry(seaweed: SeaweedS3, bucket: str, tmp_path: Path, aws_env: None) -> Registry:
    return Registry(seaweed, bucket, tmp_path)


def _ingest(registry: Registry) -> tuple[Path, dict[str, bytes]]:
    """Publish kv 1.0.0, keep a copy of the source as it was, build (ingests it)."""
    statement, artifact = registry.release("acme", "kv", "1.0.0", b"kv one\n")
    assert CliRunner().invoke(main, registry.publish_args(statement, artifact)).exit_code == 0
    original = registry.work / "original"
    shutil.copytree(registry.source, original, symlinks=True)
    result = registry.build("--new-registry")
    assert result.exit_code == 0, result.output
    folder = registry.source / "apps/kv/1.0.0"
    written = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    assert set(written) == {"statement.json", "release.toml", "kv-1.0.0.txt"}
    return original, written


def _fresh(registry: Registry, original: Path, name: str) -> Path:
    fresh = registry.work / name
    shutil.copytree(original, fresh, symlinks=True)
    registry.source = fresh
    return fresh


def test_a_fresh_checkout_gets_the_ingested_version_back(registry: Registry) -> None:
    original, written = _ingest(registry)
    client = registry.seaweed.client()
    record = json.loads(client.get_object(Bucket=registry.bucket, Key=RECORD)["Body"].read())
    assert record["type"] == "appshelf.ingested"
    assert [(v["app"], v["version"]) for v in record["versions"]] == [("kv", "1.0.0")]
    assert record["versions"][0]["artifact"]["filename"] == "kv-1.0.0.txt"
    fresh = _fresh(registry, original, "fresh")
    assert not (fresh / "apps/kv/1.0.0").exists()
    result = registry.build()
    assert result.exit_code == 0, result.output
    assert WARNING in result.output
    folder = fresh / "apps/kv/1.0.0"
    assert {p.name: p.read_bytes() for p in sorted(folder.iterdir())} == written
    assert not {k for k in registry.object_keys() if k.startswith(INBOX)}
    code, output = appshelf_verify(registry.seaweed, registry.bucket, "r", registry.work)
    assert code == 0, output
    # A folder that is there is left alone: no warning the next time.
    again = registry.build()
    assert again.exit_code == 0, again.output
    assert "restored" not in again.output


@pytest.mark.parametrize(
    ("name", "what"), [("statement.json", "statement"), ("kv-1.0.0.txt", "artifact")]
)
def test_a_tampered_published_object_is_refused(registry: Registry, name: str, what: str) -> None:
    """The published statement or artifact replaced in the bucket: nothing is written."""
    original, _ = _ingest(registry)
    client = registry.seaweed.client()
    key = f"r/apps/kv/1.0.0/{name}"
    body = client.get_object(Bucket=registry.bucket, Key=key)["Body"].read()
    client.put_object(Bucket=registry.bucket, Key=key, Body=body.replace(b"}", b" }", 1) + b" ")
    fresh = _fresh(registry, original, "fresh-tampered")
    result = registry.build()
    assert result.exit_code == 1, result.output
    assert f"Error: {key}: is not the {what} that was ingested" in result.output
    assert not (fresh / "apps/kv/1.0.0").exists()


def test_a_record_that_disagrees_with_the_log_is_refused(registry: Registry) -> None:
    """A record rewritten to pin the tampered statement: the release log still pins the
    one the build logged, so nothing is restored."""
    original, _ = _ingest(registry)
    client = registry.seaweed.client()
    key = "r/apps/kv/1.0.0/statement.json"
    body = client.get_object(Bucket=registry.bucket, Key=key)["Body"].read().replace(b"}", b" }", 1)
    client.put_object(Bucket=registry.bucket, Key=key, Body=body)
    record = json.loads(client.get_object(Bucket=registry.bucket, Key=RECORD)["Body"].read())
    record["versions"][0]["statement"] = {
        "sha256": hashlib.sha256(body).hexdigest(),
        "length": len(body),
    }
    client.put_object(Bucket=registry.bucket, Key=RECORD, Body=json.dumps(record).encode())
    fresh = _fresh(registry, original, "fresh-log")
    result = registry.build()
    assert result.exit_code == 1, result.output
    assert "Error: r/apps/kv/1.0.0/: the published release log entry of kv 1.0.0" in result.output
    assert not (fresh / "apps/kv/1.0.0").exists()


def test_a_version_not_ingested_is_still_refused_when_missing(registry: Registry) -> None:
    """Only what the inbox brought in comes back: a version that came in by a pull request
    (`publish --registry-checkout`) and is then dropped from the source is refused."""
    original, _ = _ingest(registry)
    statement, artifact = registry.release("acme", "kv", "2.0.0", b"kv two\n")
    assert artifact is not None
    args = ["publish", "--statement", str(statement), "--artifact", str(artifact)]
    published = CliRunner().invoke(main, [*args, "--registry-checkout", str(registry.source)])
    assert published.exit_code == 0, published.output
    result = registry.build()
    assert result.exit_code == 0, result.output
    fresh = _fresh(registry, original, "fresh-pr")
    result = registry.build()
    assert result.exit_code == 1, result.output
    assert WARNING in result.output  # 1.0.0 came from the inbox: restored
    assert "kv 2.0.0 is published (release log entry" in result.output
    assert "and is missing from the source" in result.output
    assert not (fresh / "apps/kv/2.0.0").exists()


def test_an_external_artifact_is_restored_as_release_toml(registry: Registry) -> None:
    """An ingested version whose artifact lives elsewhere comes back as statement.json and
    a release.toml with artifact_url, sha256 and size, byte-identical to what ingest wrote."""
    data = b"kv elsewhere\n"
    url = f"{registry.base}ext/kv-3.0.0.txt"  # http:// only under the base_url
    registry.seaweed.client().put_object(
        Bucket=registry.bucket, Key="r/ext/kv-3.0.0.txt", Body=data
    )
    folder = registry.work / "release-external"
    statement, _ = signed_release(
        registry.base, registry.publishers["acme"], "kv", "3.0.0", data, folder, url
    )
    original = registry.work / "original-external"
    shutil.copytree(registry.source, original, symlinks=True)
    published = CliRunner().invoke(main, registry.publish_args(statement, None))
    assert published.exit_code == 0, published.output
    result = registry.build("--new-registry")
    assert result.exit_code == 0, result.output
    ingested = registry.source / "apps/kv/3.0.0"
    written = {p.name: p.read_bytes() for p in sorted(ingested.iterdir())}
    assert set(written) == {"statement.json", "release.toml"}
    assert f'artifact_url = "{url}"'.encode() in written["release.toml"]
    fresh = _fresh(registry, original, "fresh-external")
    result = registry.build()
    assert result.exit_code == 0, result.output
    assert WARNING.replace("1.0.0", "3.0.0") in result.output
    restored = fresh / "apps/kv/3.0.0"
    assert {p.name: p.read_bytes() for p in sorted(restored.iterdir())} == written


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (b'{"type": "appshelf.ingested", "versions": [], "versions": []}', "not valid JSON"),
        (b'{"type": "appshelf.ingested", "versions": [{"app": "kv"}]}', "versions[0]: not {"),
        (b'{"type": "other", "versions": []}', 'not {"type": "appshelf.ingested"'),
    ],
)
def test_a_hostile_record_stops_the_build(registry: Registry, record: bytes, message: str) -> None:
    original, _ = _ingest(registry)
    registry.seaweed.client().put_object(Bucket=registry.bucket, Key=RECORD, Body=record)
    fresh = _fresh(registry, original, "fresh-record")
    result = registry.build()
    assert result.exit_code == 1, result.output
    assert f"Error: {RECORD}: {message}" in result.output
    assert "Traceback" not in result.output
    assert not (fresh / "apps/kv/1.0.0").exists()


def test_a_dry_run_restores_for_its_build_and_leaves_the_source_as_found(
    registry: Registry,
) -> None:
    original, _ = _ingest(registry)
    fresh = _fresh(registry, original, "dry")
    before = sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*"))
    result = registry.build("--dry-run")
    assert result.exit_code == 0, result.output
    assert WARNING in result.output  # the build saw the version, as a real one would
    assert sorted(p.relative_to(fresh).as_posix() for p in fresh.rglob("*")) == before
