"""The `deploy` and `build --deploy` commands as a user runs them, against SeaweedFS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.formats.consistent import plain_path
from conftest import build
from deploy.conftest import SECRET_KEY, SeaweedS3, site_keys, verify_remote

pytestmark = pytest.mark.s3
BASE = "https://registry.example/"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret-ZZZZ", "refused the credentials"),
        ("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEYZZZZ", "refused the credentials"),
        ("AWS_ACCESS_KEY_ID", None, "no AWS credentials found"),
    ],
)
def test_wrong_credentials_give_a_clear_message(
    seaweed: SeaweedS3,
    bucket: str,
    example_source: Path,
    tmp_path: Path,
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str | None,
    expected: str,
) -> None:
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    if value is None:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    else:
        monkeypatch.setenv(variable, value)
    code, output = _run("deploy", str(site), f"s3://{bucket}", "--endpoint-url", seaweed.endpoint)
    assert code == 1
    assert expected in output and output.startswith("Error: ")
    assert "Traceback" not in output
    for secret in (SECRET_KEY, "not-the-secret-ZZZZ"):
        assert secret not in output


def test_missing_bucket_and_bad_target(
    seaweed: SeaweedS3, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    code, output = _run(
        "deploy", str(site), "s3://no-such-bucket-xyz", "--endpoint-url", seaweed.endpoint
    )
    assert code == 1 and "does not exist" in output
    code, output = _run("deploy", str(site), "https://bucket/x")
    assert code == 1 and "expected s3://BUCKET" in output
    code, output = _run("deploy", str(example_source), "s3://b")
    assert code == 1 and "not an appshelf build output" in output


def test_build_deploy_twice_from_empty_folders_is_a_no_op(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    """The CI case: every run starts with no earlier output; the bucket is the memory."""
    common = [
        "--base-url",
        BASE,
        "--deploy",
        f"s3://{bucket}/r",
        "--endpoint-url",
        seaweed.endpoint,
        "--json",
    ]
    env = {"SOURCE_DATE_EPOCH": "1768478400"}
    first = CliRunner(env=env).invoke(
        main, ["build", str(example_source), "-o", str(tmp_path / "one"), *common]
    )
    assert first.exit_code == 0, first.output
    second = CliRunner(env={"SOURCE_DATE_EPOCH": "1768564800"}).invoke(
        main, ["build", str(example_source), "-o", str(tmp_path / "two"), *common]
    )
    assert second.exit_code == 0, second.output
    report = json.loads(second.output)
    assert report["deploy"]["uploaded"] == 0
    assert "PutObject" not in report["deploy"]["requests"]
    assert report["build"]["snapshot_version"] == 1
    # A new version: the next snapshot version, built on the deployed one.
    from deploy.helpers import add_version

    add_version(example_source, "slack-notify", "1.2.0")
    third = CliRunner(env=env).invoke(
        main, ["build", str(example_source), "-o", str(tmp_path / "three"), *common]
    )
    assert third.exit_code == 0, third.output
    report = json.loads(third.output)
    assert report["build"]["snapshot_version"] == 2
    sent = {i["path"]: i["kind"] for i in report["deploy"]["plan"] if i["action"] == "upload"}
    copies = {p for p, kind in sent.items() if kind == "pinned-copy"}
    assert {plain_path(p)[0] for p in copies} == {  # type: ignore[index]
        "apps/slack-notify/1.2.0/manifest.json",
        "apps/slack-notify/app.json",
        "apps/slack-notify/versions.json",
        "bins/1.json",  # slack-notify's bin (docs/spec.md 4.8)
        "index.json",
        "log/checkpoint",
    }
    assert {p for p, kind in sent.items() if kind not in ("page", "asset", "pinned-copy")} == {
        "apps/slack-notify/1.2.0/slack-notify-1.2.0.tar.gz",
        "apps/slack-notify/1.2.0/manifest.json",
        "apps/slack-notify/app.json",
        "apps/slack-notify/versions.json",
        "bins/1.json",  # slack-notify's bin (docs/spec.md 4.8)
        "index.json",
        "log/checkpoint",
        "log/tile/0/000.p/17",
        "log/tile/entries/000.p/17",
        "snapshot.json",
    }
    assert report["build"]["log_appended"] == 1 and report["build"]["log_bytes_read"] > 0
    verify_remote(seaweed.client(), bucket, "r", site_keys(tmp_path / "three"))


def test_dry_run_prints_the_plan(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    code, output = _run(
        "deploy",
        str(site),
        f"s3://{bucket}",
        "--endpoint-url",
        seaweed.endpoint,
        "--dry-run",
        "--cloudfront-distribution",
        "E123",
    )
    assert code == 0, output
    assert "dry run, nothing changed" in output
    assert "upload  apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz  (new, artifact)" in output
    assert "would invalidate /*" in output
    assert seaweed.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    code, output = _run("deploy", str(site), f"s3://{bucket}", "--endpoint-url", seaweed.endpoint)
    assert code == 0 and "deployed" in output
    code, output = _run("deploy", str(site), f"s3://{bucket}", "--endpoint-url", seaweed.endpoint)
    assert code == 0 and "already up to date" in output and "PutObject" not in output
