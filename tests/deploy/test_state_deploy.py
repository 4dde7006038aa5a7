"""The published build state (`log/state.json`, docs/spec.md 9.7) on the `build --deploy`
path, against SeaweedFS: the bucket is the published registry, read by the same reader as
`--previous-url` (tests/test_gitstate.py covers that one over HTTP).

A CI runner's case: a fresh `git clone`, an empty output folder, no build cache. The
state deployed with the registry gives every unchanged artifact's digest by git blob id,
so nothing is hashed; the state is used only as the snapshot pins it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.formats.buildstate import STATE_FILE
from deploy.conftest import SeaweedS3, fetch
from test_gitstate import clone_of, commit_all, generate, git
from test_memo import files

pytestmark = [
    pytest.mark.s3,
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
]
APPS, VERSIONS = 4, 2
PREFIX = "r"
EPOCH = "1768478400"  # every run at one time: no re-signing for the clock's sake


class Bucket:
    """`appshelf build` runs against s3://bucket/r, each into a new empty folder."""

    def __init__(self, seaweed: SeaweedS3, bucket: str, work: Path):
        self.seaweed, self.bucket, self.work = seaweed, bucket, work
        self.base = f"{seaweed.endpoint}/{bucket}/{PREFIX}/"

    def run(self, source: Path, name: str, *extra: str) -> tuple[int, str, Path]:
        output = self.work / name
        args = ["build", str(source), "-o", str(output), "--base-url", self.base, "--json"]
        args += ["--endpoint-url", self.seaweed.endpoint, *extra]
        env = {"APPSHELF_SIGNING_KEY": "", "SOURCE_DATE_EPOCH": EPOCH}
        result = CliRunner(env=env).invoke(main, args)
        return result.exit_code, result.output, output

    def deploy(self, source: Path, name: str, *extra: str) -> tuple[dict[str, Any], Path]:
        code, output, folder = self.run(source, name, "--deploy", self.target, *extra)
        assert code == 0, output
        return json.loads(output), folder

    @property
    def target(self) -> str:
        return f"s3://{self.bucket}/{PREFIX}"

    def objects(self) -> dict[str, bytes]:
        client = self.seaweed.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return {k[len(PREFIX) + 1 :]: fetch(client, self.bucket, k) for k in keys}


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A committed registry at the top of its git repository."""
    root = tmp_path / "origin"
    generate.generate_small(root, APPS, VERSIONS, seed=5)
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "registry")
    return root


@pytest.fixture
def remote(seaweed: SeaweedS3, bucket: str, tmp_path: Path, aws_env: None) -> Bucket:
    return Bucket(seaweed, bucket, tmp_path / "runs")


def _first_publish(remote: Bucket, origin: Path) -> Path:
    report, first = remote.deploy(origin, "first", "--new-registry")
    assert report["build"]["artifacts_hashed"] == APPS * VERSIONS
    state = remote.objects().get(STATE_FILE)
    assert state is not None and state == (first / STATE_FILE).read_bytes()
    assert len(json.loads(state)["artifacts"]) == APPS * VERSIONS  # one per blob id
    return first


def test_a_fresh_clone_deployed_to_the_bucket_hashes_no_artifact(
    remote: Bucket, origin: Path, tmp_path: Path
) -> None:
    """The comparison: the clone's build that used the state (0 artifacts hashed) against
    a cold build of the same clone that cannot use it -- `--previous` the first deploy's
    own output folder, into another empty folder with no cache, so every artifact is read
    and hashed (and the check says so). Both start from the same published registry at
    the same time, so they must be byte for byte the same; and the bucket, after the
    second deploy, must hold exactly those bytes (it uploaded nothing: nothing changed)."""
    first = _first_publish(remote, origin)
    clone = clone_of(origin, tmp_path)
    shutil.rmtree(origin)  # nothing of the first work tree is left
    report, ci = remote.deploy(clone, "ci")
    assert report["build"]["artifacts_hashed"] == 0
    assert report["build"]["bytes_hashed"] == 0
    assert report["deploy"]["uploaded"] == 0
    code, output, cold = remote.run(clone, "cold", "--previous", str(first))
    assert code == 0, output
    assert json.loads(output)["artifacts_hashed"] == APPS * VERSIONS
    assert files(cold) == files(ci) == files(first)
    bucket = remote.objects()
    assert {path: bucket.get(path) for path in files(ci)} == files(ci)


def test_a_tampered_build_state_in_the_bucket_is_refused(
    remote: Bucket, origin: Path, tmp_path: Path
) -> None:
    """Other bytes in log/state.json and in its content-addressed copy (which is what a
    reader of a consistent snapshot fetches), of the same length: the snapshot pins the
    digest, so the build refuses, naming the file, and nothing is written or uploaded."""
    _first_publish(remote, origin)
    client = remote.seaweed.client()
    for path, data in remote.objects().items():
        if path.startswith("log/") and path.endswith("state.json"):  # the file and its copy
            tampered = bytearray(data)
            at = tampered.index(b'"sha256":"') + len(b'"sha256":"')
            tampered[at] = ord("0") if tampered[at] != ord("0") else ord("1")
            client.put_object(Bucket=remote.bucket, Key=f"{PREFIX}/{path}", Body=bytes(tampered))
    before = remote.objects()
    code, output, folder = remote.run(clone_of(origin, tmp_path), "ci", "--deploy", remote.target)
    assert code == 1, output
    assert output.startswith("Error: ") and "Traceback" not in output
    assert STATE_FILE in output and "not what snapshot.json pins" in output, output
    assert not folder.exists()
    assert remote.objects() == before


def test_other_bytes_in_the_plain_state_file_only_are_put_back(
    remote: Bucket, origin: Path, tmp_path: Path
) -> None:
    """A consistent snapshot's reader fetches the content-addressed copy, never the plain
    log/state.json: other bytes there (not even JSON) do not reach the build, which still
    hashes nothing, and the deploy puts the pinned bytes back (spec 4.1.1: the plain file
    holds the copy's bytes once a publish is complete)."""
    first = _first_publish(remote, origin)
    client = remote.seaweed.client()
    client.put_object(Bucket=remote.bucket, Key=f"{PREFIX}/{STATE_FILE}", Body=b"not the state")
    report, ci = remote.deploy(clone_of(origin, tmp_path), "ci")
    assert report["build"]["artifacts_hashed"] == 0
    sent = [i["path"] for i in report["deploy"]["plan"] if i["action"] == "upload"]
    assert sent == [STATE_FILE]
    assert remote.objects()[STATE_FILE] == (ci / STATE_FILE).read_bytes()
    assert files(ci) == files(first)
