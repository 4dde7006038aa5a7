"""Artifacts that already live in the bucket (the Flows core registry's layout,
apps/<key>/versions/<v>.tar.gz, written by someone else and named by artifact_url), and
what `deploy --delete` may remove: only objects appshelf wrote that nothing refers to."""

from __future__ import annotations

import hashlib
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.errors import DeployRefusedError, SourceTreeError
from appshelf.source.lifecycle import record_standing
from conftest import build
from deploy.conftest import SeaweedS3, appshelf_verify, deploy, site_keys, verify_remote
from deploy.helpers import add_version

NOW = datetime.now(UTC).replace(microsecond=0)  # `appshelf verify` checks expiry
APP = "hello-world"


def flows_core(
    seaweed: SeaweedS3, bucket: str, source: Path, versions: dict[str, bytes]
) -> dict[str, str]:
    """Put each artifact straight into the bucket (boto3, not appshelf) as the Flows core
    registry lays it out, keep a copy in the source's apps/<key>/versions/ as its
    repository does, and point each version's release.toml at the object.
    Returns key -> ETag."""
    base = f"{seaweed.endpoint}/{bucket}/"
    client = seaweed.client()
    etags = {}
    (source / "apps" / APP / "versions").mkdir(exist_ok=True)
    for version, data in versions.items():
        key = f"apps/{APP}/versions/{version}.tar.gz"
        etags[key] = client.put_object(Bucket=bucket, Key=key, Body=data)["ETag"]
        (source / "apps" / APP / "versions" / f"{version}.tar.gz").write_bytes(data)
        folder = source / "apps" / APP / version
        folder.mkdir()
        (folder / "release.toml").write_text(
            f'published = 2026-01-10T00:00:00Z\nartifact_url = "{base}{key}"\n'
            f'sha256 = "{hashlib.sha256(data).hexdigest()}"\nsize = {len(data)}\n'
        )
    return etags


def bucket_keys(seaweed: SeaweedS3, bucket: str) -> dict[str, str]:
    listed = seaweed.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listed}


def verify_folder(site: Path, *extra: str) -> tuple[int, str]:
    state = tempfile.mkdtemp(dir=site.parent)
    args = ["verify", str(site), "--allow-dev-key", "--state-dir", state, *extra]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output


def test_versions_folder_is_not_a_version_and_own_paths_are_refused(
    example_source: Path, tmp_path: Path
) -> None:
    """apps/<key>/versions/ (the Flows core layout) is skipped, not refused as a bad
    version; an artifact_url under base_url may not name a path the build writes, and
    http:// is allowed only under an http:// base_url."""
    base = "http://127.0.0.1:9/bucket/"
    (example_source / "apps" / APP / "versions").mkdir()
    (example_source / "apps" / APP / "versions" / "1.0.0.tar.gz").write_bytes(b"x")
    build(example_source, tmp_path / "ok", base_url=base)
    assert not (tmp_path / "ok" / "apps" / APP / "versions").exists()

    pin = f'sha256 = "{"a" * 64}"\nsize = 1\n'
    urls = {
        "7.0.0": f"{base}apps/{APP}/1.0.0/other.tar.gz",  # inside a version folder
        "7.1.0": f"{base}log/x.tar.gz",
        "7.2.0": f"{base}x.tar.gz",
        "7.3.0": "http://elsewhere.example/x.tar.gz",
    }
    for version, url in urls.items():
        folder = example_source / "apps" / APP / version
        folder.mkdir()
        (folder / "release.toml").write_text(f'artifact_url = "{url}"\n{pin}')
    with pytest.raises(SourceTreeError) as caught:
        build(example_source, tmp_path / "bad", base_url=base)
    text = str(caught.value)
    assert text.count("is under base_url at a path appshelf writes itself") == 3, text
    assert "7.3.0/release.toml: artifact_url: must be an https:// URL" in text


@pytest.mark.s3
def test_flows_core_artifacts_in_the_bucket_end_to_end(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    objects = flows_core(
        seaweed, bucket, example_source, {"2.0.0": b"two" * 500, "2.1.0": b"two-one" * 300}
    )
    stray = seaweed.client().put_object(Bucket=bucket, Key="notes/stray.txt", Body=b"mine")
    site = tmp_path / "site"
    build(example_source, site, base_url=f"{seaweed.endpoint}/{bucket}/", now=NOW)
    assert not (site / "apps" / APP / "versions").exists()  # nothing copied

    for extra in ((), ("--artifacts",)):
        code, output = verify_folder(site, *extra)
        assert code == 0, output
        assert output.count("is not in this folder") == 2, output

    first = deploy(seaweed, site, f"s3://{bucket}")
    assert not {i.path for i in first.plan} & set(objects)  # neither uploaded nor planned
    again = deploy(seaweed, site, f"s3://{bucket}", delete=True)
    assert again.deleted == 0
    assert any("kept 1 object(s) appshelf did not write" in n for n in again.notes), again.notes
    after = bucket_keys(seaweed, bucket)
    assert {k: after[k] for k in objects} == objects  # the very objects boto3 wrote
    assert after["notes/stray.txt"] == stray["ETag"]
    code, output = appshelf_verify(seaweed, bucket, "", tmp_path)
    assert code == 0 and "artifacts        15 ok" in output, output

    # A takedown lets the version leave; its artifact stays, as appshelf never wrote it.
    record_standing(example_source, APP, "2.0.0", "takedown", "legal request")
    build(example_source, site, base_url=f"{seaweed.endpoint}/{bucket}/", now=NOW)
    report = deploy(seaweed, site, f"s3://{bucket}", delete=True)
    assert f"apps/{APP}/2.0.0/manifest.json" in {
        i.path for i in report.plan if i.action == "delete"
    }
    after = bucket_keys(seaweed, bucket)
    assert {k: after[k] for k in objects} == objects
    code, output = appshelf_verify(seaweed, bucket, "", tmp_path)
    assert code == 0 and "artifacts        14 ok" in output, output


@pytest.mark.s3
def test_artifact_missing_from_the_bucket_is_refused(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    objects = flows_core(seaweed, bucket, example_source, {"2.0.0": b"two" * 500})
    (key,) = objects
    site = tmp_path / "site"
    build(example_source, site, base_url=f"{seaweed.endpoint}/{bucket}/", now=NOW)
    client = seaweed.client()
    client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(DeployRefusedError, match=rf"{APP} 2.0.0: .* {key}, which is not in"):
        deploy(seaweed, site, f"s3://{bucket}")
    assert bucket_keys(seaweed, bucket) == {}
    client.put_object(Bucket=bucket, Key=key, Body=b"short")
    with pytest.raises(DeployRefusedError, match=r"which has 5 bytes in the bucket; .* 1,500"):
        deploy(seaweed, site, f"s3://{bucket}")
    assert set(bucket_keys(seaweed, bucket)) == {key}


@pytest.mark.s3
def test_delete_removes_only_what_appshelf_wrote_and_nothing_refers_to(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    base = f"{seaweed.endpoint}/{bucket}/"
    site = tmp_path / "site"
    add_version(example_source, "kv-store", "2.0.0")
    build(example_source, site, base_url=base, now=NOW)
    (site / "old-page.html").write_text("<p>old</p>")
    deploy(seaweed, site, f"s3://{bucket}")
    # Gone from the site, deployed once without --delete: the record still knows it.
    (site / "old-page.html").unlink()
    deploy(seaweed, site, f"s3://{bucket}")
    seaweed.client().put_object(Bucket=bucket, Key="stray.html", Body=b"not appshelf's")
    # Taken down: its artifact (which appshelf uploaded) may go, and does.
    record_standing(example_source, "kv-store", "2.0.0", "takedown", "leaked secret")
    build(example_source, site, base_url=base, now=NOW)
    artifact = "apps/kv-store/2.0.0/kv-store-2.0.0.tar.gz"
    report = deploy(seaweed, site, f"s3://{bucket}", delete=True)
    deleted = {i.path for i in report.plan if i.action == "delete"}
    # (and the partial log tiles the longer log's tiles supersede, also appshelf's own)
    assert {p for p in deleted if not p.startswith("log/tile/")} == {
        "old-page.html",
        artifact,
        "apps/kv-store/2.0.0/manifest.json",
    }
    keys = set(bucket_keys(seaweed, bucket))
    assert "stray.html" in keys and not deleted & keys
    assert any("stray.html" in n and "did not write" in n for n in report.notes), report.notes
    verify_remote(seaweed.client(), bucket, "", site_keys(site))
    code, output = appshelf_verify(seaweed, bucket, "", tmp_path)
    assert code == 0, output
