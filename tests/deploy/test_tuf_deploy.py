"""[tuf] on the `build --deploy` path, against SeaweedFS: the TUF metadata's versions go on
from the bucket (every run starts from an empty folder, as in CI), the TUF files go up
after snapshot.json with the timestamp last, and python-tuf's ngclient, unchanged, reads
the bucket over HTTP on 127.0.0.1 and follows the second deploy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tuf.ngclient import Updater, UpdaterConfig

from appshelf.deploy.files import Kind, cache_control, kind_of
from appshelf.source.models import DeploySection
from deploy.conftest import SeaweedS3
from deploy.test_log_deploy import Deployed

pytestmark = pytest.mark.s3


@pytest.fixture
def deployed(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> Deployed:
    with (example_source / "registry.toml").open("a") as handle:
        handle.write("\n[tuf]\nenabled = true\nbins = 16\n")
    return Deployed(seaweed, bucket, example_source, tmp_path)


def _updater(deployed: Deployed, metadata: Path, root: bytes | None) -> Updater:
    (metadata / "downloads").mkdir(parents=True, exist_ok=True)
    return Updater(
        str(metadata),
        deployed.base + "tuf/",
        str(metadata / "downloads"),
        deployed.base,
        config=UpdaterConfig(prefix_targets_with_hash=False),
        bootstrap=root,
    )


def _fetch(updater: Updater, path: str) -> bytes:
    updater.refresh()
    info = updater.get_targetinfo(path)
    assert info is not None, path
    return Path(updater.download_target(info)).read_bytes()


def test_tuf_metadata_deploys_and_carries_over(deployed: Deployed, tmp_path: Path) -> None:
    result, first = deployed.build()
    assert result.exit_code == 0, result.output
    client = tmp_path / "client"
    root = (first / "tuf/1.root.json").read_bytes()
    artifact = "apps/hello-world/1.0.0/hello-world-1.0.0.tar.gz"
    assert _fetch(_updater(deployed, client, root), artifact) == (first / artifact).read_bytes()

    folder = deployed.source / "apps/hello-world/3.0.0"
    folder.mkdir()
    (folder / "hello-world-3.0.0.tar.gz").write_bytes(b"three")
    result, second = deployed.build()
    assert result.exit_code == 0, result.output
    timestamp = json.loads((second / "tuf/timestamp.json").read_bytes())["signed"]
    assert timestamp["version"] == 2
    assert timestamp["meta"]["snapshot.json"]["version"] == 2
    objects = deployed.objects()
    assert "tuf/timestamp.json" in {k.removeprefix("r/") for k in objects}
    head = deployed.seaweed.client().head_object(Bucket=deployed.bucket, Key="r/tuf/timestamp.json")
    assert head["CacheControl"] == DeploySection().snapshot_cache_control
    again = _updater(deployed, client, None)  # the root the client cached after the first
    assert _fetch(again, "apps/hello-world/3.0.0/hello-world-3.0.0.tar.gz") == b"three"


def test_tuf_files_go_up_after_the_snapshot() -> None:
    none: frozenset[str] = frozenset()
    assert kind_of("tuf/timestamp.json", none) is Kind.TUF_TIMESTAMP
    assert kind_of("tuf/3.bin-0a.json", none) is Kind.TUF_METADATA
    assert kind_of("tuf/root.json", none) is Kind.TUF_METADATA
    assert Kind.SNAPSHOT.phase < Kind.TUF_METADATA.phase < Kind.TUF_TIMESTAMP.phase
    config = DeploySection()
    versioned = cache_control(Kind.TUF_METADATA, config, "tuf/3.bin-0a.json")
    assert versioned == config.immutable_cache_control
    assert cache_control(Kind.TUF_METADATA, config, "tuf/root.json") == config.cache_control
