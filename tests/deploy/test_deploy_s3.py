"""Deploys of example-registry against a real SeaweedFS S3 server, with request counts."""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appshelf.deploy import (
    ClientOptions,
    DeployOptions,
    RequestCounter,
    S3Store,
    S3Target,
    deploy_site,
)
from appshelf.deploy.files import STATE_KEY
from appshelf.deploy.run import read_published, read_remote
from appshelf.errors import DeployConflictError, DeployRefusedError, SourceTreeError
from appshelf.formats.consistent import plain_path
from conftest import build
from deploy.conftest import (
    SeaweedS3,
    appshelf_verify,
    deploy,
    fetch,
    site_keys,
    verify_remote,
)
from deploy.helpers import add_version, replace_artifact

pytestmark = pytest.mark.s3
BASE = "https://registry.example/"
NOW = datetime.now(UTC).replace(microsecond=0)  # `appshelf verify` checks expiry
WRITES = (
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "DeleteObjects",
    "CopyObject",
)


def writes(requests: dict[str, int]) -> int:
    return sum(n for op, n in requests.items() if op in WRITES)


def uploaded(report: object) -> set[str]:
    return {item.path for item in report.plan if item.action == "upload"}  # type: ignore[attr-defined]


def test_first_noop_and_one_new_version(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    target = f"s3://{bucket}/registry"

    first = deploy(seaweed, site, target)
    assert first.uploaded == len(files)
    # Every file once, plus the deploy record; one listing; one look at the snapshot.
    assert first.requests == {"HeadObject": 1, "ListObjectsV2": 1, "PutObject": len(files) + 1}
    assert verify_remote(seaweed.client(), bucket, "registry", site_keys(site)) > 30

    again = deploy(seaweed, site, target)
    assert again.uploaded == 0 and again.skipped == len(files)
    assert writes(again.requests) == 0
    # The listing, the deploy record and the snapshot: no HEAD per object.
    assert again.requests == {"GetObject": 2, "ListObjectsV2": 1}

    add_version(example_source, "hello-world", "1.2.0")
    build(example_source, site, base_url=BASE)
    third = deploy(seaweed, site, target)
    copies = {p for p in uploaded(third) if plain_path(p) is not None}  # before the snapshot
    assert {plain_path(p)[0] for p in copies} == {  # type: ignore[index]
        "apps/hello-world/1.2.0/manifest.json",
        "apps/hello-world/app.json",
        "apps/hello-world/versions.json",
        "bins/2.json",  # hello-world's bin (docs/spec.md 4.8)
        "index.json",
        "log/checkpoint",
    }
    assert uploaded(third) - copies == {
        "apps/hello-world/1.2.0/hello-world-1.2.0.tar.gz",
        "apps/hello-world/1.2.0/manifest.json",
        "apps/hello-world/app.json",
        "apps/hello-world/versions.json",
        "bins/2.json",
        "index.json",
        "log/checkpoint",
        "log/tile/0/000.p/17",
        "log/tile/entries/000.p/17",
        "snapshot.json",
    }
    order = [item.path for item in third.plan if item.action == "upload"]
    assert order[0].endswith(".tar.gz") and order[-1] == "snapshot.json"
    assert (
        order.index("apps/hello-world/1.2.0/manifest.json")
        < order.index("apps/hello-world/app.json")
        < order.index("index.json")
    )
    # Uploads + the record; reads: list, record, snapshot, the changed app.json, and the
    # current copies of the other replaced index files (to put back if a racing deploy wins),
    # and the deployed bin that differs from the site's (its app.json pins, docs/spec.md 4.8).
    assert third.requests["PutObject"] == 11 + len(copies)  # 10, and the app's bin
    assert third.requests["GetObject"] == 2 + 1 + 3 + 1
    assert verify_remote(seaweed.client(), bucket, "registry", site_keys(site)) > 30


def test_headers_per_file_kind(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    (example_source / "registry.toml").write_text(
        (example_source / "registry.toml").read_text()
        + '\n[deploy]\ncache_control = "public, max-age=120"\n'
    )
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    # What the HTML site generator adds next to the registry files.
    extra = {
        "index.html": b"<!doctype html><title>x</title>",
        "apps/kv-store/index.html": b"<!doctype html>",
        "feed.xml": b"<feed/>",
        "sitemap.xml": b"<urlset/>",
        "robots.txt": b"User-agent: *\n",
        "static/site.css": b"body{}",
        "static/site.js": b"void 0;",
        ".nojekyll": b"",
        "demo.wasm": b"\0asm\1\0\0\0",
    }
    for relpath, data in extra.items():
        (site / relpath).parent.mkdir(parents=True, exist_ok=True)
        (site / relpath).write_bytes(data)
    from appshelf.cli.deploy import deploy_config

    deploy(seaweed, site, f"s3://{bucket}", config=deploy_config(example_source))
    client = seaweed.client()
    immutable = "public, max-age=31536000, immutable"
    short = "public, max-age=120"
    expected = {
        "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz": ("application/gzip", immutable),
        "apps/kv-store/1.0.0/manifest.json": ("application/json", short),
        "apps/kv-store/app.json": ("application/json", short),
        "apps/kv-store/versions.json": ("application/json", short),
        "apps/kv-store/icon.png": ("image/png", short),
        "apps/hello-world/icon.svg": ("image/svg+xml", short),
        "registry.json": ("application/json", short),
        "index.json": ("application/json", short),
        "keys.json": ("application/json", short),
        "snapshot.json": ("application/json", "public, max-age=60, must-revalidate"),
        "index.html": ("text/html; charset=utf-8", short),
        "apps/kv-store/index.html": ("text/html; charset=utf-8", short),
        "feed.xml": ("application/xml", short),
        "sitemap.xml": ("application/xml", short),
        "robots.txt": ("text/plain; charset=utf-8", short),
        "static/site.css": ("text/css; charset=utf-8", short),
        "static/site.js": ("text/javascript; charset=utf-8", short),
        ".nojekyll": ("text/plain; charset=utf-8", short),
        "demo.wasm": ("application/wasm", short),
    }
    schema = next((site / "schemas").glob("*.schema.json")).relative_to(site).as_posix()
    expected[schema] = ("application/json", short)
    for key, (ctype, cache) in expected.items():
        head = client.head_object(Bucket=bucket, Key=key)
        assert (head["ContentType"], head.get("CacheControl")) == (ctype, cache), key
        assert len(head["Metadata"]["sha256"]) == 64
    # Changing only the cache policy re-sends the affected files, nothing else.
    report = deploy(seaweed, site, f"s3://{bucket}")
    changed = uploaded(report)
    assert "apps/kv-store/1.0.0/kv-store-1.0.0.tar.gz" not in changed
    assert "index.html" in changed and "snapshot.json" not in changed
    assert {i.reason for i in report.plan if i.action == "upload"} == {"headers"}


def test_svg_icons_download_when_opened_from_the_bucket(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    """S3 cannot send a CSP: publishers' SVGs get `Content-Disposition: attachment`, so
    a browser opening one downloads it; a bucket deployed without it is fixed next time."""
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    target = f"s3://{bucket}"
    deploy(seaweed, site, target)
    client = seaweed.client()
    icon = "apps/hello-world/icon.svg"
    assert client.head_object(Bucket=bucket, Key=icon)["ContentDisposition"] == "attachment"
    for other in ("apps/kv-store/icon.png", "index.json", "apps/kv-store/app.json"):
        assert "ContentDisposition" not in client.head_object(Bucket=bucket, Key=other), other
    assert deploy(seaweed, site, target).uploaded == 0  # the record remembers the header

    # As an older appshelf left it: the icon without the header, the deploy record
    # without the field.
    old = client.head_object(Bucket=bucket, Key=icon)
    client.put_object(
        Bucket=bucket,
        Key=icon,
        Body=(site / icon).read_bytes(),
        ContentType=old["ContentType"],
        CacheControl=old["CacheControl"],
        Metadata=old["Metadata"],
    )
    assert "ContentDisposition" not in client.head_object(Bucket=bucket, Key=icon)
    record = json.loads(client.get_object(Bucket=bucket, Key=STATE_KEY)["Body"].read())
    for entry in record["objects"].values():
        entry.pop("content_disposition", None)
    client.put_object(Bucket=bucket, Key=STATE_KEY, Body=json.dumps(record).encode())
    report = deploy(seaweed, site, target)
    svgs = {p.relative_to(site).as_posix() for p in (site / "apps").glob("*/icon.svg")}
    assert len(svgs) == 4 and icon in svgs
    assert {(i.path, i.reason) for i in report.plan if i.action == "upload"} == {
        (svg, "headers") for svg in svgs
    }
    assert client.head_object(Bucket=bucket, Key=icon)["ContentDisposition"] == "attachment"


def test_multipart_upload_is_conditional_and_tagged(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    big = bytes(range(256)) * 3300  # written 8 times: 6.4 MiB, sent in parts
    add_version(example_source, "http-client", "3.0.0", payload=big)
    add_version(example_source, "http-client", "3.0.1", payload=big[: 1 << 18])  # 2 MiB, streamed
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    report = deploy(seaweed, site, f"s3://{bucket}", multipart_threshold=5 * 1024 * 1024)
    assert report.requests["CompleteMultipartUpload"] == 1
    assert report.requests["UploadPart"] >= 1
    head = seaweed.client().head_object(
        Bucket=bucket, Key="apps/http-client/3.0.0/http-client-3.0.0.tar.gz"
    )
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentLength"] == len(big) * 8
    assert report.requests["PutObject"] == report.uploaded  # 3.0.1 in one request (+ record)
    assert verify_remote(seaweed.client(), bucket, "", site_keys(site)) > 30
    assert writes(deploy(seaweed, site, f"s3://{bucket}").requests) == 0


def test_dry_run_changes_nothing(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    report = deploy(seaweed, site, f"s3://{bucket}/x", dry_run=True)
    assert report.uploaded > 30 and writes(report.requests) == 0
    assert "Contents" not in seaweed.client().list_objects_v2(Bucket=bucket)


class KilledError(Exception):
    pass


class DyingStore(S3Store):
    """Dies (as a killed process would, without cleaning up) after `limit` uploads."""

    def __init__(self, *args: object, limit: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.limit = limit
        self.lock = threading.Lock()

    def put(self, relpath: str, *args: object, **kwargs: object) -> str:
        with self.lock:
            if self.limit <= 0:
                raise KilledError(relpath)
            self.limit -= 1
        return super().put(relpath, *args, **kwargs)  # type: ignore[arg-type]


def _store(seaweed: SeaweedS3, target: str, cls: type[S3Store] = S3Store, **kw: object) -> S3Store:
    options = ClientOptions(endpoint_url=seaweed.endpoint, jobs=1)
    return cls(S3Target.parse(target), options, RequestCounter(), **kw)  # type: ignore[arg-type]


def _dangling(seaweed: SeaweedS3, bucket: str, base: str) -> list[str]:
    """Artifacts or manifests named by any deployed app.json that are not there."""
    from appshelf.formats.documents import AppDetail

    client = seaweed.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    missing = []
    for key in keys:
        if key.endswith("/app.json") and key.count("/") == 2:
            detail = AppDetail.model_validate_json(fetch(client, bucket, key))
            for entry in detail.versions:
                wanted = [entry.manifest_path]
                if entry.artifact.url.startswith(base):
                    wanted.append(entry.artifact.url[len(base) :])
                missing += [w for w in wanted if w not in keys]
    return missing


def test_deploy_killed_after_any_upload_leaves_a_registry_that_verifies(
    seaweed: SeaweedS3, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    """Consistent snapshots (docs/spec.md 4.1): killed after any number of uploads, the
    bucket verifies over HTTP as the old or the new registry, even when the deploy
    replaces manifests and index files the old snapshot pins (an app edit)."""
    newer = tmp_path / "newer-source"
    shutil.copytree(example_source, newer)
    add_version(newer, "hello-world", "1.2.0")
    add_version(newer, "kv-store", "2.0.0")
    app_toml = newer / "apps/hello-world/app.toml"  # every hello-world manifest re-signed
    app_toml.write_text(app_toml.read_text().replace('description = "', 'description = "New. ', 1))
    bucket = seaweed.new_bucket()
    base = f"{seaweed.endpoint}/{bucket}/"  # served straight from the bucket
    site, site2 = tmp_path / "site", tmp_path / "site2"
    build(example_source, site, base_url=base, now=NOW)
    shutil.copytree(site, site2)
    build(newer, site2, base_url=base, now=NOW + timedelta(minutes=1))
    deploy(seaweed, site, f"s3://{bucket}", jobs=8)
    planned = deploy(seaweed, site2, f"s3://{bucket}", dry_run=True).uploaded
    assert planned > 25  # artifacts, manifests, index files, their copies, log, snapshot
    for limit in range(0, planned + 1, 3):  # each from a fresh bucket
        _killed_deploy_verifies(seaweed, example_source, newer, tmp_path / f"k{limit}", limit)


def _killed_deploy_verifies(
    seaweed: SeaweedS3, source: Path, newer: Path, work: Path, limit: int
) -> None:
    bucket = seaweed.new_bucket()
    base = f"{seaweed.endpoint}/{bucket}/"
    site, site2 = work / "site", work / "site2"
    build(source, site, base_url=base, now=NOW)
    shutil.copytree(site, site2)
    build(newer, site2, base_url=base, now=NOW + timedelta(minutes=1))
    deploy(seaweed, site, f"s3://{bucket}", jobs=8)
    store = _store(seaweed, f"s3://{bucket}", DyingStore, limit=limit)
    with contextlib.suppress(KilledError):
        deploy(seaweed, site2, f"s3://{bucket}", store=store)
    # Never an index naming an object that is not there...
    assert _dangling(seaweed, bucket, base) == [], limit
    # ...and the registry verifies, as the old or the new snapshot, after any upload.
    code, output = appshelf_verify(seaweed, bucket, "", work)
    assert code == 0, (limit, output)
    snapshot = fetch(seaweed.client(), bucket, "snapshot.json")
    assert snapshot in (
        (site / "snapshot.json").read_bytes(),
        (site2 / "snapshot.json").read_bytes(),
    )
    # The next deploy finishes the job, uploading only the rest.
    deploy(seaweed, site2, f"s3://{bucket}")
    assert (
        fetch(seaweed.client(), bucket, "snapshot.json") == (site2 / "snapshot.json").read_bytes()
    )
    code, output = appshelf_verify(seaweed, bucket, "", work)
    assert code == 0 and "manifests        16 ok" in output, output


def test_published_artifact_change_is_refused_with_nothing_uploaded(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    deploy(seaweed, site, f"s3://{bucket}")
    # A fresh build (no earlier output to catch it) of a source whose published artifact
    # changed, plus an innocent new version.
    replace_artifact(example_source, "kv-store", "1.0.0", b"tampered")
    add_version(example_source, "hello-world", "1.2.0")
    other = tmp_path / "other"
    build(example_source, other, base_url=BASE)
    before = seaweed.client().list_objects_v2(Bucket=bucket)["Contents"]
    with pytest.raises(DeployRefusedError, match=r"release log \(16 entries\) is not a prefix"):
        deploy(seaweed, other, f"s3://{bucket}")
    assert seaweed.client().list_objects_v2(Bucket=bucket)["Contents"] == before


def test_build_missing_a_published_version_or_older_is_refused(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    old = tmp_path / "old"
    shutil.copytree(site, old)
    add_version(example_source, "hello-world", "1.2.0")
    build(example_source, site, base_url=BASE)
    deploy(seaweed, site, f"s3://{bucket}")
    with pytest.raises(DeployRefusedError, match=r"release log \(17 entries\) is not a prefix"):
        deploy(seaweed, old, f"s3://{bucket}")
    shutil.rmtree(example_source / "apps/hello-world/1.2.0")
    add_version(example_source, "hello-world", "1.3.0")
    build(example_source, old, base_url=BASE)  # knows 1.3.0, not 1.2.0
    with pytest.raises(DeployRefusedError, match=r"is not a prefix of the one being deployed"):
        deploy(seaweed, old, f"s3://{bucket}")


def test_two_racing_deploys_one_wins_none_loses_a_version(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    url = f"{seaweed.endpoint}/{bucket}/"  # served straight from the bucket
    base = tmp_path / "base"
    build(example_source, base, base_url=url, now=NOW)
    deploy(seaweed, base, f"s3://{bucket}")
    sources = {}
    sites = {}
    for name, app, version in (("a", "hello-world", "1.2.0"), ("b", "kv-store", "2.0.0")):
        sources[name] = tmp_path / f"src-{name}"
        shutil.copytree(example_source, sources[name])
        add_version(sources[name], app, version)
        sites[name] = tmp_path / f"site-{name}"
        shutil.copytree(base, sites[name])
        build(sources[name], sites[name], base_url=url, now=NOW)

    # Both read the bucket, then both upload at once.
    barrier = threading.Barrier(2)

    class RacingStore(S3Store):
        def put(self, relpath: str, *args: object, **kwargs: object) -> str:
            if not getattr(self, "met", False):
                self.met = True
                barrier.wait(timeout=30)
            return super().put(relpath, *args, **kwargs)  # type: ignore[arg-type]

    results: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            results[name] = deploy(
                seaweed,
                sites[name],
                f"s3://{bucket}",
                store=_store(seaweed, f"s3://{bucket}", RacingStore),
            )
        except Exception as exc:
            results[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    failures = {n: r for n, r in results.items() if isinstance(r, Exception)}
    assert len(failures) == 1, results
    ((loser, error),) = failures.items()
    assert isinstance(error, DeployConflictError | DeployRefusedError), error
    assert "rebuild from the latest deployed state" in str(error)
    print(f"loser {loser}: {error}")
    # The winner's registry verifies: the loser put back what it had replaced.
    keys = site_keys(base)
    verify_remote(seaweed.client(), bucket, "", keys)
    code, output = appshelf_verify(seaweed, bucket, "", tmp_path)
    assert code == 0, output

    # The loser does what the message says: rebuild from the deployed state, deploy again.
    store = _store(seaweed, f"s3://{bucket}")
    previous, state = read_published(store)
    from appshelf.builder import BuildOptions, build_registry

    merged = tmp_path / "merged"
    shutil.copytree(sources[loser], merged)
    winner_app, winner_version = ("hello-world", "1.2.0") if loser == "b" else ("kv-store", "2.0.0")
    shutil.copytree(
        sources["a" if loser == "b" else "b"] / "apps" / winner_app / winner_version,
        merged / "apps" / winner_app / winner_version,
    )
    out = tmp_path / "rebuilt"
    build_registry(
        merged, out, BuildOptions(now=NOW, environ={}, base_url=url, previous_source=previous)
    )

    deploy_site(
        out, f"s3://{bucket}", DeployOptions(client=store.options), state=state, store=store
    )
    verify_remote(seaweed.client(), bucket, "", keys)
    code, output = appshelf_verify(seaweed, bucket, "", tmp_path)
    assert code == 0 and "manifests        16 ok" in output, output
    client = seaweed.client()
    for key in ("apps/hello-world/1.2.0/manifest.json", "apps/kv-store/2.0.0/manifest.json"):
        assert fetch(client, bucket, key)
    app_json = fetch(client, bucket, "apps/hello-world/app.json")
    assert b'"1.2.0"' in app_json and b'"2.0.0"' in fetch(client, bucket, "apps/kv-store/app.json")


@pytest.mark.parametrize("jobs", [1, 4])
def test_a_deploy_that_loses_a_log_tile_writes_nothing_after_it(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None, jobs: int
) -> None:
    """A loser that wrote one more tile after the one it lost would leave a log mixed from
    two deploys, and make the winner fail on that tile (seen as both racers failing)."""
    target = f"s3://{bucket}"
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE, now=NOW)
    deploy(seaweed, site, target)
    before = {o["Key"] for o in seaweed.client().list_objects_v2(Bucket=bucket)["Contents"]}
    add_version(example_source, "kv-store", "2.0.0")
    build(example_source, site, base_url=BASE, now=NOW)
    tiles = sorted(
        p.relative_to(site).as_posix()
        for p in (site / "log" / "tile").rglob("*")
        if p.is_file() and p.relative_to(site).as_posix() not in before
    )
    assert len(tiles) >= 2, tiles  # the hash tile and the entries tile the new entry is in
    attempted: list[str] = []

    class RecordingStore(S3Store):
        def put(self, relpath: str, *args: object, **kwargs: object) -> str:
            attempted.append(relpath)
            return super().put(relpath, *args, **kwargs)  # type: ignore[arg-type]

    store = _store(seaweed, target, RecordingStore)
    state = read_remote(store)
    # Another deploy wrote the first of them (other bytes) after this one read the bucket.
    seaweed.client().put_object(Bucket=bucket, Key=tiles[0], Body=b"another deploy's tile")
    options = DeployOptions(client=ClientOptions(endpoint_url=seaweed.endpoint, jobs=jobs))
    with pytest.raises(DeployConflictError, match=tiles[0]):
        deploy_site(site, target, options, state=state, store=store)
    assert attempted[-1] == tiles[0], attempted  # the lost tile is the last write tried
    after = {o["Key"] for o in seaweed.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert not after & set(tiles[1:]), after & set(tiles[1:])
    assert "apps/kv-store/2.0.0/manifest.json" not in after


def test_delete_removes_stale_files_but_keeps_published_artifacts(
    seaweed: SeaweedS3, bucket: str, example_source: Path, tmp_path: Path, aws_env: None
) -> None:
    site = tmp_path / "site"
    build(example_source, site, base_url=BASE)
    (site / "old-page.html").write_text("<p>old</p>")
    deploy(seaweed, site, f"s3://{bucket}")
    (site / "old-page.html").unlink()
    # kv-store 0.9.0 cannot move to an external host, even with the same bytes: its URL
    # is part of the release the log recorded, and clients pinned it.
    artifact = site / "apps/kv-store/0.9.0/kv-store-0.9.0.tar.gz"
    data = artifact.read_bytes()
    import hashlib

    folder = example_source / "apps/kv-store/0.9.0"
    (folder / "kv-store-0.9.0.tar.gz").rename(tmp_path / "kept.tar.gz")
    release = (folder / "release.toml").read_text()
    (folder / "release.toml").write_text(
        release + f'artifact_url = "https://mirror.example/kv-store-0.9.0.tar.gz"\n'
        f'sha256 = "{hashlib.sha256(data).hexdigest()}"\nsize = {len(data)}\n'
    )
    with pytest.raises(SourceTreeError, match=r"artifact URL"):
        build(example_source, site, base_url=BASE)
    (folder / "release.toml").write_text(release)
    (tmp_path / "kept.tar.gz").rename(folder / "kv-store-0.9.0.tar.gz")
    build(example_source, site, base_url=BASE)
    dry = deploy(seaweed, site, f"s3://{bucket}", delete=True, dry_run=True)
    assert {i.path for i in dry.plan if i.action == "delete"} == {"old-page.html"}
    report = deploy(seaweed, site, f"s3://{bucket}", delete=True)
    assert report.deleted == 1
    keys = {o["Key"] for o in seaweed.client().list_objects_v2(Bucket=bucket)["Contents"]}
    assert "old-page.html" not in keys
    assert "apps/kv-store/0.9.0/kv-store-0.9.0.tar.gz" in keys
    assert STATE_KEY in keys
    verify_remote(seaweed.client(), bucket, "", site_keys(site))


def test_build_deploy_reads_bucket_objects_with_a_size_cap(
    seaweed: SeaweedS3, bucket: str, aws_env: None
) -> None:
    """What `build --deploy` reads from the bucket is input like any server's: an object
    larger than the reader's limit is an error (S3Store.get now refuses it from its
    Content-Length, or after limit + 1 bytes, rather than reading it whole first)."""
    from appshelf.errors import RemoteAccessError

    seaweed.client().put_object(Bucket=bucket, Key="log/checkpoint", Body=b"x" * 10_000)
    source, _ = read_published(_store(seaweed, f"s3://{bucket}"))
    with pytest.raises(RemoteAccessError, match=r"larger than 4096 bytes"):
        source.read("log/checkpoint", 4096)
    assert source.read("log/checkpoint", 10_000) == b"x" * 10_000
    assert source.read("missing.json", 10) is None
