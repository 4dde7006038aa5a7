"""Run a real SeaweedFS S3 server (`weed mini`) on 127.0.0.1, for tests and benchmarks.

Every port it opens is chosen free and bound to 127.0.0.1, telemetry is off, the data
lives in one folder per run, and the process group is stopped by its pid at the end.
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

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


def client_environment(root: Path) -> dict[str, str]:
    """Variables for a process that deploys to the test server: its credentials, and no
    AWS config files (under `root`, never created) or instance metadata to fall back on."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(root / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials"),
    }


def weed_binary() -> str | None:
    found = Path(sys.executable).parent / "weed"
    return str(found) if found.exists() else shutil.which("weed")


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


@contextmanager
def run_seaweed(weed: str, root: Path) -> Iterator[SeaweedS3]:
    data = root / "data"
    data.mkdir(parents=True)
    identities = root / "identities.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "deployer",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    },
                    # Public read, as a registry bucket is: clients fetch over plain HTTP.
                    {"name": "anonymous", "actions": ["Read"]},
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
        weed,
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
        # Each bucket is a collection with volumes of its own; left at 0 the limit is free
        # disk / volume size, which a full disk makes too small for the suite's buckets
        # ("failed to find writable volumes"). Volumes are files, grown only as written.
        "-volume.max=2000",
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
            process.wait(timeout=3)  # its data is thrown away: no need to wait long
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
