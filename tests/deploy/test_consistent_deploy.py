"""Consistent snapshots in a bucket (docs/deploy.md): every deploy uploads the new
content-addressed copies before the snapshot, keeps the copies of the snapshot it
replaces, and removes older ones; with or without `--delete`."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appshelf.formats.consistent import plain_path
from conftest import build
from deploy.conftest import SeaweedS3, appshelf_verify, deploy
from deploy.helpers import add_version
from generations import pinned_copies as _pinned_and_tiles

pytestmark = pytest.mark.s3
NOW = datetime.now(UTC).replace(microsecond=0)  # `appshelf verify` checks expiry


def _bucket(seaweed: SeaweedS3, bucket: str) -> dict[str, bytes]:
    client = seaweed.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"]
            found[item["Key"]] = body.read()
    return found


def _copies(objects: dict[str, bytes]) -> set[str]:
    return {key for key in objects if plain_path(key) is not None}


def pinned_copies(objects: dict[str, bytes]) -> set[str]:
    """The content-addressed copies the snapshot among `objects` pins."""
    return {key for key in _pinned_and_tiles(objects) if plain_path(key) is not None}


@pytest.mark.parametrize("delete", [False, True])
def test_deploys_keep_the_replaced_snapshots_copies_and_drop_older_ones(
    seaweed: SeaweedS3, example_source: Path, tmp_path: Path, aws_env: None, delete: bool
) -> None:
    bucket = seaweed.new_bucket()
    base = f"{seaweed.endpoint}/{bucket}/"
    site = tmp_path / "site"
    build(example_source, site, base_url=base, now=NOW)
    deploy(seaweed, site, f"s3://{bucket}", delete=delete)
    first = _bucket(seaweed, bucket)
    first_copies = pinned_copies(first)
    assert first_copies and first_copies == _copies(first)

    app_toml = example_source / "apps/kv-store/app.toml"
    app_toml.write_text(app_toml.read_text().replace('description = "', 'description = "B. ', 1))
    build(example_source, site, base_url=base, now=NOW + timedelta(minutes=1))
    deploy(seaweed, site, f"s3://{bucket}", delete=delete)
    second = _bucket(seaweed, bucket)
    second_copies = pinned_copies(second)
    assert first_copies | second_copies == _copies(second)  # the first kept for its readers

    add_version(example_source, "kv-store", "3.0.0")
    build(example_source, site, base_url=base, now=NOW + timedelta(minutes=2))
    report = deploy(seaweed, site, f"s3://{bucket}", delete=delete)
    third = _bucket(seaweed, bucket)
    assert second_copies | pinned_copies(third) == _copies(third)
    gone = first_copies - second_copies - pinned_copies(third)
    assert gone and report.deleted >= len(gone) and not gone & set(third)
    # The replaced snapshot's partial log tiles stay too (even with --delete).
    second_tiles = {p for p in _pinned_and_tiles(second) if ".p/" in p}
    assert second_tiles and second_tiles <= set(third)
    code, output = appshelf_verify(seaweed, bucket, "", tmp_path)
    assert code == 0, output


def test_a_fresh_build_deployed_keeps_the_deployed_snapshots_copies(
    seaweed: SeaweedS3, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    """A CI build into an empty folder (`--previous` from a copy, no earlier copies of its
    own): the deployed snapshot's copies stay in the bucket for one more deploy."""
    bucket = seaweed.new_bucket()
    base = f"{seaweed.endpoint}/{bucket}/"
    site = tmp_path / "site"
    build(example_source, site, base_url=base, now=NOW)
    deploy(seaweed, site, f"s3://{bucket}")
    first_copies = pinned_copies(_bucket(seaweed, bucket))
    add_version(example_source, "hello-world", "3.0.0")
    fresh = tmp_path / "fresh"
    previous = tmp_path / "previous"
    shutil.copytree(site, previous)
    build(example_source, fresh, base_url=base, now=NOW + timedelta(minutes=1), previous=previous)
    assert not first_copies - pinned_copies(_files(fresh)) & set(_files(fresh))
    deploy(seaweed, fresh, f"s3://{bucket}")
    after = _bucket(seaweed, bucket)
    assert first_copies <= set(after)
    code, output = appshelf_verify(seaweed, bucket, "", tmp_path)
    assert code == 0, output


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
