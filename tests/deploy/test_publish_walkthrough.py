"""docs/publishing.md's walkthrough, run as written: one release from an app's repository
(an artifact and a publisher key) through `sign-release` and `publish` into the S3 inbox,
the registry's `build --deploy`, and a client's verified `fetch` over HTTP."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from deploy.conftest import SeaweedS3, fetch
from deploy.seaweed import client_environment

pytestmark = pytest.mark.s3


def _walkthrough() -> str:
    text = (REPO_ROOT / "docs/publishing.md").read_text()
    block = text.split("<!-- walkthrough -->", 1)[1].split("```sh\n", 1)[1]
    return block.split("```", 1)[0]


def test_walkthrough_from_tag_to_verified_fetch(
    seaweed: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    artifact = gzip.compress(b"kv-store 1.0.0 package\n", mtime=0)
    app = tmp_path / "app"
    (app / "dist").mkdir(parents=True)
    (app / "dist/kv-store-1.0.0.tar.gz").write_bytes(artifact)
    (app / "CHANGELOG.md").write_text("First release.\n")
    base_url = f"{seaweed.endpoint}/{bucket}/registry/"
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO_ROOT / "src"),
        "HOME": str(tmp_path),
        "APPSHELF_STATE_DIR": str(tmp_path / "client-state"),
        "BASE_URL": base_url,
        "BUCKET": bucket,
        "ENDPOINT": seaweed.endpoint,
        **client_environment(tmp_path),
    }
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _walkthrough()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ingested kv-store 1.0.0; cleared 2 object(s)" in run.stdout
    # The client wrote the artifact only after verifying it from the registry's key down.
    assert (tmp_path / "vendor/kv-store-1.0.0.tar.gz").read_bytes() == artifact
    # Published, countersigned, and nothing left in the inbox.
    client = seaweed.client()
    manifest = json.loads(fetch(client, bucket, "registry/apps/kv-store/1.0.0/manifest.json"))
    assert manifest["signed"]["publisher"]["id"] == "acme"
    assert manifest["signed"]["provides"] == ["storage.kv"]
    listing = client.list_objects_v2(Bucket=bucket, Prefix="registry/.appshelf/inbox/")
    assert not listing.get("Contents")
    statement = tmp_path / "registry/apps/kv-store/1.0.0/statement.json"
    assert statement.read_bytes() == (app / "statement.json").read_bytes()
