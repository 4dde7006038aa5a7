"""Publishing into the S3 inbox and `build --deploy` ingesting it, against SeaweedFS:
concurrent publishes lose nothing, a version is accepted once, hostile inbox objects are
refused by name and left alone, and clients fetch what was ingested, verified, over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import botocore.exceptions
import pytest
from click.testing import CliRunner, Result

from appshelf.cli import main
from appshelf.formats.statement import MAX_STATEMENT_BYTES
from conftest import REPO_ROOT
from deploy.conftest import SeaweedS3, fetch
from deploy.seaweed import client_environment
from publish_helpers import Publisher, make_registry, signed_release

pytestmark = pytest.mark.s3
INBOX = "r/.appshelf/inbox/"


class Registry:
    """A registry source deployed at s3://bucket/r, built with `build --deploy`."""

    def __init__(self, seaweed: SeaweedS3, bucket: str, work: Path):
        self.seaweed, self.bucket, self.work = seaweed, bucket, work
        self.base = f"{seaweed.endpoint}/{bucket}/r/"
        self.source = work / "registry"
        self.publishers: dict[str, Publisher] = make_registry(self.source, self.base, work)
        self.runs = 0

    def build(self, *extra: str) -> Result:
        self.runs += 1
        args = ["build", str(self.source), "-o", str(self.work / f"run-{self.runs}"), "--no-site"]
        args += ["--deploy", f"s3://{self.bucket}/r", "--endpoint-url", self.seaweed.endpoint]
        return CliRunner().invoke(main, [*args, *extra], env={"APPSHELF_SIGNING_KEY": ""})

    def release(
        self, publisher: str, app: str, version: str, data: bytes, name: str = ""
    ) -> tuple[Path, Path | None]:
        folder = self.work / f"release-{app}-{version}{name}"
        return signed_release(self.base, self.publishers[publisher], app, version, data, folder)

    def publish_args(self, statement: Path, artifact: Path | None) -> list[str]:
        args = ["publish", "--statement", str(statement)]
        args += ["--artifact", str(artifact)] if artifact is not None else []
        return [*args, f"s3://{self.bucket}/r", "--endpoint-url", self.seaweed.endpoint]

    def publish_process(
        self, statement: Path, artifact: Path | None
    ) -> subprocess.CompletedProcess[str]:
        """`appshelf publish` in its own process, as two CI jobs would run it."""
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO_ROOT / "src"),
            **client_environment(self.work),
        }
        command = [sys.executable, "-m", "appshelf", *self.publish_args(statement, artifact)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    def object_keys(self) -> set[str]:
        listing = self.seaweed.client().list_objects_v2(Bucket=self.bucket)
        return {o["Key"] for o in listing.get("Contents", [])}

    def put(self, relpath: str, body: bytes) -> None:
        self.seaweed.client().put_object(Bucket=self.bucket, Key=INBOX + relpath, Body=body)

    def fetch(self, spec: str) -> tuple[Result, Path]:
        dest = Path(tempfile.mkdtemp(dir=self.work))
        state = tempfile.mkdtemp(dir=self.work)
        args = ["fetch", "-r", self.base, "--allow-dev-key", "--require-publisher"]
        args += ["--state-dir", state]
        return CliRunner().invoke(main, [*args, spec, "-d", str(dest)]), dest


@pytest.fixture
def registry(seaweed: SeaweedS3, bucket: str, tmp_path: Path, aws_env: None) -> Registry:
    return Registry(seaweed, bucket, tmp_path)


def test_seaweedfs_honours_if_none_match(seaweed: SeaweedS3, bucket: str) -> None:
    """The mechanism the inbox rests on: a conditional create fails once the key exists."""
    client = seaweed.client()
    client.put_object(Bucket=bucket, Key="k", Body=b"first", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.put_object(Bucket=bucket, Key="k", Body=b"second", IfNoneMatch="*")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"first"


def test_concurrent_publishes_are_all_ingested_and_fetched(registry: Registry) -> None:
    kv = registry.release("acme", "kv", "1.0.0", b"kv one\n")
    notes = registry.release("other", "notes", "2.0.0", b"notes two\n")
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda r: registry.publish_process(*r), [kv, notes]))
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "Uploaded" in run.stdout
    assert {k for k in registry.object_keys() if k.startswith(INBOX)} == {
        INBOX + "kv/1.0.0/kv-1.0.0.txt",
        INBOX + "kv/1.0.0/statement.json",
        INBOX + "notes/2.0.0/notes-2.0.0.txt",
        INBOX + "notes/2.0.0/statement.json",
    }
    result = registry.build("--new-registry")
    assert result.exit_code == 0, result.output
    assert "ingested kv 1.0.0, notes 2.0.0; cleared 4 object(s)" in result.output
    assert not {k for k in registry.object_keys() if k.startswith(INBOX)}  # exactly those went
    # The source tree now holds both version folders, as a pull request would have added.
    for app, version, (statement, _) in (("kv", "1.0.0", kv), ("notes", "2.0.0", notes)):
        folder = registry.source / "apps" / app / version
        assert (folder / "statement.json").read_bytes() == statement.read_bytes()
    # The registry's manifest countersigns each statement: it names the publisher and pins
    # the statement.json published beside it, byte for byte what the publisher signed.
    client = registry.seaweed.client()
    for app, version, publisher, (statement, _) in (
        ("kv", "1.0.0", "acme", kv),
        ("notes", "2.0.0", "other", notes),
    ):
        folder = f"r/apps/{app}/{version}"
        manifest = json.loads(fetch(client, registry.bucket, f"{folder}/manifest.json"))
        signed = manifest["signed"]["publisher"]
        assert signed["id"] == publisher
        assert signed["keyid"] == registry.publishers[publisher].key.keyid
        published = fetch(client, registry.bucket, f"{folder}/statement.json")
        assert published == statement.read_bytes()
        assert signed["statement"]["sha256"] == hashlib.sha256(published).hexdigest()
    for spec, data in (("kv@1.0.0", b"kv one\n"), ("notes@2", b"notes two\n")):
        fetched, dest = registry.fetch(spec)
        assert fetched.exit_code == 0, fetched.output
        assert [p.read_bytes() for p in dest.iterdir()] == [data]
    # A second build finds nothing to take and changes nothing.
    again = registry.build()
    assert again.exit_code == 0, again.output
    assert "inbox" not in again.output


def test_two_publishes_of_one_version_at_once_one_wins(registry: Registry) -> None:
    first = registry.release("acme", "kv", "1.0.0", b"one\n", "-a")
    second = registry.release("acme", "kv", "1.0.0", b"two\n", "-b")
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda r: registry.publish_process(*r), [first, second]))
    assert sorted(r.returncode for r in runs) == [0, 1], [r.stderr for r in runs]
    loser = next(r for r in runs if r.returncode)
    assert loser.stderr.startswith("Error: ") and "Traceback" not in loser.stderr
    assert "already holds other bytes for kv 1.0.0" in loser.stderr
    winner = first if runs[0].returncode == 0 else second
    result = registry.build("--new-registry")
    assert result.exit_code == 0, result.output
    assert "ingested kv 1.0.0" in result.output
    statement = registry.source / "apps/kv/1.0.0/statement.json"
    assert statement.read_bytes() == winner[0].read_bytes()


def test_a_published_version_is_refused(registry: Registry) -> None:
    release = registry.release("acme", "kv", "1.0.0", b"one\n")
    assert CliRunner().invoke(main, registry.publish_args(*release)).exit_code == 0
    # The same publish again (a retried job) is harmless: the inbox holds these bytes.
    assert CliRunner().invoke(main, registry.publish_args(*release)).exit_code == 0
    assert registry.build("--new-registry").exit_code == 0
    again = registry.release("acme", "kv", "1.0.0", b"other bytes\n", "-again")
    before = registry.object_keys()
    result = CliRunner().invoke(main, registry.publish_args(*again))
    assert result.exit_code == 1
    assert "kv 1.0.0 is already published" in result.output
    assert registry.object_keys() == before


def test_hostile_inbox_objects_are_refused_by_name(registry: Registry) -> None:
    good = registry.release("acme", "kv", "1.0.0", b"good\n")
    assert CliRunner().invoke(main, registry.publish_args(*good)).exit_code == 0
    registry.put("kv/2.0.0/statement.json", b"x" * (MAX_STATEMENT_BYTES + 1))
    registry.put("kv/3.0.0/statement.json", b'{"signed": ')
    statement, artifact = registry.release("acme", "kv", "4.0.0", b"four\n")
    tampered = json.loads(statement.read_bytes())
    tampered["signatures"][0]["sig"] = "00" * 64
    registry.put("kv/4.0.0/statement.json", json.dumps(tampered).encode())
    assert artifact is not None
    registry.put("kv/4.0.0/kv-4.0.0.txt", artifact.read_bytes())
    wrong_app, _ = registry.release("acme", "kv", "5.0.0", b"five\n")
    registry.put("notes/5.0.0/statement.json", wrong_app.read_bytes())
    not_owner, _ = registry.release("other", "kv", "6.0.0", b"six\n")
    registry.put("kv/6.0.0/statement.json", not_owner.read_bytes())
    registry.put("kv/6.0.0/kv-6.0.0.txt", b"six\n")
    swapped, _ = registry.release("acme", "kv", "7.0.0", b"seven\n")
    registry.put("kv/7.0.0/statement.json", swapped.read_bytes())
    registry.put("kv/7.0.0/kv-7.0.0.txt", b"SEVEN\n")  # same size, other bytes
    forged = Publisher("acme", registry.publishers["other"].key, Path("unused"))
    claimed, _ = signed_release(registry.base, forged, "kv", "8.0.0", b"8", registry.work / "f")
    registry.put("kv/8.0.0/statement.json", claimed.read_bytes())
    registry.put("kv/8.0.0/kv-8.0.0.txt", b"8")
    registry.put("kv/v8/statement.json", b"{}")
    registry.put("kv/9.0.0/upload-in-progress.txt", b"partial")
    hostile = {k for k in registry.object_keys() if k.startswith(INBOX)} - {
        INBOX + "kv/1.0.0/kv-1.0.0.txt",
        INBOX + "kv/1.0.0/statement.json",
    }

    result = registry.build("--new-registry")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    refused = [line for line in result.output.splitlines() if "inbox: refused" in line]
    expected = {
        ".appshelf/inbox/kv/2.0.0/statement.json": "larger than",
        ".appshelf/inbox/kv/3.0.0/statement.json": "not valid JSON",
        ".appshelf/inbox/kv/4.0.0/statement.json": "bad signature",
        ".appshelf/inbox/notes/5.0.0/statement.json": "lies in the inbox folder of notes 5.0.0",
        ".appshelf/inbox/kv/6.0.0/statement.json": "'other' is not an owner of kv",
        ".appshelf/inbox/kv/7.0.0/kv-7.0.0.txt": "is not the artifact the statement signs",
        ".appshelf/inbox/kv/8.0.0/statement.json": "publisher 'acme': release statement: signed by 1 key(s)",
        ".appshelf/inbox/kv/v8/statement.json": "not .appshelf/inbox/<app key>/<SemVer",
    }
    assert len(refused) == len(expected), refused
    for name, why in expected.items():
        assert any(name in line and why in line for line in refused), "\n".join([name, *refused])
    assert "kv/9.0.0/: no statement.json yet" in result.output
    assert "ingested kv 1.0.0; cleared 2 object(s)" in result.output
    # Refused objects stay where they were, untouched; none reached the registry.
    assert {k for k in registry.object_keys() if k.startswith(INBOX)} == hostile
    assert sorted(p.name for p in (registry.source / "apps/kv").iterdir()) == ["1.0.0", "app.toml"]
    assert not (registry.source / "apps/notes/5.0.0").exists()


def test_a_dry_run_ingests_nothing(registry: Registry) -> None:
    release = registry.release("acme", "kv", "1.0.0", b"one\n")
    assert CliRunner().invoke(main, registry.publish_args(*release)).exit_code == 0
    before = registry.object_keys()
    result = registry.build("--new-registry", "--dry-run")
    assert result.exit_code == 0, result.output
    assert registry.object_keys() == before
    assert not (registry.source / "apps/kv/1.0.0").exists()


def test_a_failed_build_leaves_source_and_inbox_as_they_were(registry: Registry) -> None:
    """The build stops after the inbox was taken into the source (the bucket holds an
    object but no registry, and --new-registry is missing): the folder is removed again
    and the inbox keeps every object."""
    release = registry.release("acme", "kv", "1.0.0", b"one\n")
    assert CliRunner().invoke(main, registry.publish_args(*release)).exit_code == 0
    registry.seaweed.client().put_object(Bucket=registry.bucket, Key="r/stray.txt", Body=b"x")
    before = registry.object_keys()
    result = registry.build()
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    assert "--new-registry" in result.output
    assert registry.object_keys() == before
    assert sorted(p.name for p in (registry.source / "apps/kv").iterdir()) == ["app.toml"]


def test_an_inbox_left_behind_by_a_deployed_build_is_cleared_by_the_next(
    registry: Registry,
) -> None:
    """A build that deployed but could not delete its inbox objects: the next build finds
    the same statements in the source, takes them as ingested and clears them; a
    different statement for that version is refused instead."""
    statement, artifact = registry.release("acme", "kv", "1.0.0", b"one\n")
    assert CliRunner().invoke(main, registry.publish_args(statement, artifact)).exit_code == 0
    assert registry.build("--new-registry").exit_code == 0
    assert artifact is not None
    registry.put("kv/1.0.0/kv-1.0.0.txt", artifact.read_bytes())
    registry.put("kv/1.0.0/statement.json", statement.read_bytes())
    published = {k for k in registry.object_keys() if not k.startswith(INBOX)}
    result = registry.build()
    assert result.exit_code == 0, result.output
    assert "ingested kv 1.0.0; cleared 2 object(s)" in result.output
    assert registry.object_keys() == published
    other, other_artifact = registry.release("acme", "kv", "1.0.0", b"other\n", "-other")
    assert other_artifact is not None
    registry.put("kv/1.0.0/kv-1.0.0.txt", other_artifact.read_bytes())
    registry.put("kv/1.0.0/statement.json", other.read_bytes())
    result = registry.build()
    assert result.exit_code == 0, result.output
    assert "kv 1.0.0 is already in the source tree with another statement" in result.output
    assert (registry.source / "apps/kv/1.0.0/statement.json").read_bytes() == statement.read_bytes()


def test_inbox_reads_are_bounded(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the version bound the rest waits for the next build; past the object bound
    the build reads nothing of the inbox and stops, naming it."""
    from appshelf.deploy import inbox

    for version in ("1.0.0", "1.1.0"):
        release = registry.release("acme", "kv", version, version.encode())
        assert CliRunner().invoke(main, registry.publish_args(*release)).exit_code == 0
    monkeypatch.setattr(inbox, "MAX_INBOX_VERSIONS", 1)
    first = registry.build("--new-registry")
    assert first.exit_code == 0, first.output
    assert "ingested kv 1.0.0; cleared 2 object(s)" in first.output
    assert "kv/1.1.0/: left for the next build" in first.output
    second = registry.build()
    assert "ingested kv 1.1.0; cleared 2 object(s)" in second.output, second.output
    for n in range(4):
        registry.put(f"kv/2.0.{n}/statement.json", b"{}")
    monkeypatch.setattr(inbox, "MAX_INBOX_OBJECTS", 3)
    before = registry.object_keys()
    third = registry.build()
    assert third.exit_code == 1
    assert "the inbox .appshelf/inbox/ holds 4 objects, more than 3" in third.output
    assert registry.object_keys() == before
