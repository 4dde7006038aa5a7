"""[tuf]: the site as a TUF repository, checked with python-tuf's own ngclient, unchanged.

Every client test runs ngclient's `Updater` over HTTP against a real http.server on
127.0.0.1 serving a built site; the only configuration is `prefix_targets_with_hash=False`
(docs/spec.md §16: targets keep their plain paths). ngclient checks expiry against the
real clock, so builds here sign at the real current time (or 40 days before it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from securesystemslib.signer._utils import compute_default_keyid
from tuf.api import exceptions
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import Updater, UpdaterConfig

from appshelf import filestat
from appshelf.builder import BuildOptions, BuildReport, build_registry
from appshelf.cli import main
from appshelf.deploy.http import HttpSource
from appshelf.errors import OutputError, SigningKeyError
from appshelf.formats.consistent import plain_path
from appshelf.signing.keys import RegistryKey, write_new_key_file
from appshelf.site import site_generator
from conftest import StaticServer

ARTIFACT = "apps/hello-world/1.0.0/hello-world-1.0.0.tar.gz"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Site:
    """A TUF-enabled copy of example-registry, built into a served folder."""

    def __init__(self, tmp_path: Path, server: StaticServer, source: Path):
        self.tmp = tmp_path
        self.server = server
        self.source = source
        self.out = server.root / "site"
        self.url = server.url + "site/"
        toml = source / "registry.toml"
        text = toml.read_text().replace("http://127.0.0.1:8000/", self.url)
        toml.write_text(text + "\n[tuf]\nenabled = true\nbins = 16\n")
        self.key_path = tmp_path / "registry.key"
        self.key = write_new_key_file(self.key_path)
        self.clients = 0

    def build(self, out: Path | None = None, **options: object) -> BuildReport:
        options.setdefault("now", _now())
        options.setdefault("environ", {"APPSHELF_SIGNING_KEY": self.key_path.read_text()})
        options.setdefault("generators", (site_generator(),))  # the HTML pages are targets too
        return build_registry(self.source, out or self.out, BuildOptions(**options))  # type: ignore[arg-type]

    def tuf(self, name: str) -> Path:
        return self.out / "tuf" / name

    def updater(self, metadata_dir: Path | None = None, root: bytes | None = None) -> Updater:
        """An ngclient Updater trusting `root` (default: this site's 1.root.json), or
        the root cached in `metadata_dir` by an earlier client."""
        if metadata_dir is None:
            self.clients += 1
            metadata_dir = self.tmp / f"client-{self.clients}"
            metadata_dir.mkdir()
            root = root or self.tuf("1.root.json").read_bytes()
        targets = metadata_dir / "downloads"
        targets.mkdir(exist_ok=True)
        return Updater(
            str(metadata_dir),
            self.url + "tuf/",
            str(targets),
            self.url,
            config=UpdaterConfig(prefix_targets_with_hash=False),
            bootstrap=root,
        )


@pytest.fixture
def site(tmp_path: Path, static_server: StaticServer, example_source: Path) -> Site:
    return Site(tmp_path, static_server, example_source)


def _download(updater: Updater, path: str) -> bytes:
    updater.refresh()
    info = updater.get_targetinfo(path)
    assert info is not None, path
    return Path(updater.download_target(info)).read_bytes()


def _site_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_ngclient_downloads_and_verifies_every_site_file(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files here are seconds old: treat them as settled, so unchanged apps are reused.
    monkeypatch.setattr(filestat, "RACY_NS", -(10**18))
    site.build()
    updater = site.updater()
    source = site.source / "apps/hello-world/1.0.0/hello-world-1.0.0.tar.gz"
    assert _download(updater, ARTIFACT) == source.read_bytes()
    _every_file_is_a_target(site, updater)
    # The next build reuses unchanged apps and takes their pages' digests from the
    # published bins: every file still verifies.
    folder = site.source / "apps/kv-store/3.0.0"
    folder.mkdir()
    (folder / "kv-store-3.0.0.tar.gz").write_bytes(b"three")
    report = site.build()
    assert report.apps_reused > 0
    again = site.updater(site.tmp / "client-1")
    again.refresh()
    _every_file_is_a_target(site, again)


def _every_file_is_a_target(site: Site, updater: Updater) -> None:
    """Every file of this build is a target; the previous snapshot's content-addressed
    copies, kept one more build for its readers (docs/spec.md 4.1.1), are not."""
    files = _site_files(site.out)

    def of_this_build(path: str) -> bool:
        copy = plain_path(path)  # (plain path, sha256) of a content-addressed copy
        if copy is not None:
            return hashlib.sha256(files[copy[0]]).hexdigest() == copy[1]
        place, _, width = path.partition(".p/")  # a partial log tile, kept while wider
        widths = [int(p.partition(".p/")[2]) for p in files if p.startswith(place + ".p/")]
        return not width or int(width) == max(widths)

    targets = {p: d for p, d in files.items() if not p.startswith("tuf/") and of_this_build(p)}
    assert len(targets) > 80  # artifacts, manifests, indexes, the log, the HTML pages
    for path, data in targets.items():
        info = updater.get_targetinfo(path)
        assert info is not None, path
        assert info.length == len(data), path
        assert info.hashes == {"sha256": hashlib.sha256(data).hexdigest()}, path
    assert updater.get_targetinfo("apps/hello-world/9.9.9/nothing.tar.gz") is None


def test_layout_keys_and_bins(site: Site) -> None:
    """Consistent snapshots, one bin file per bin, and TUF's own key id rule."""
    site.build()
    names = sorted(p.name for p in (site.out / "tuf").iterdir())
    bins = [f"1.bin-{i:x}.json" for i in range(16)]
    assert names == sorted(
        [*bins, "1.root.json", "1.snapshot.json", "1.targets.json", "root.json", "timestamp.json"]
    )
    root = json.loads(site.tuf("root.json").read_bytes())
    (keyid,) = root["signed"]["keys"]
    key = root["signed"]["keys"][keyid]
    assert key == {
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyval": {"public": site.key.public_hex},
    }
    assert keyid == compute_default_keyid("ed25519", "ed25519", key["keyval"])
    assert all(
        role == {"keyids": [keyid], "threshold": 1} for role in root["signed"]["roles"].values()
    )
    assert root["signed"]["consistent_snapshot"] is True
    # The bytes are python-tuf's own compact serialization of the parsed metadata.
    for name in names:
        data = site.tuf(name).read_bytes()
        assert Metadata.from_bytes(data).to_bytes(JSONSerializer(compact=True)) == data, name


def test_a_tampered_artifact_is_refused(site: Site) -> None:
    site.build()
    artifact = site.out / ARTIFACT
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 1
    artifact.write_bytes(bytes(data))
    with pytest.raises(exceptions.LengthOrHashMismatchError):
        _download(site.updater(), ARTIFACT)


def test_a_rolled_back_timestamp_is_refused(site: Site) -> None:
    site.build()
    old = site.tuf("timestamp.json").read_bytes()
    site.build(resign=True)  # the scheduled re-sign: a new timestamp and snapshot
    assert json.loads(site.tuf("timestamp.json").read_bytes())["signed"]["version"] == 2
    client = site.updater()
    client.refresh()
    site.tuf("timestamp.json").write_bytes(old)
    with pytest.raises(exceptions.BadVersionNumberError):
        site.updater(site.tmp / "client-1").refresh()


def test_an_expired_timestamp_is_refused(site: Site) -> None:
    site.build(now=_now() - timedelta(days=40))  # [signing] snapshot_lifetime_days = 30
    with pytest.raises(exceptions.ExpiredMetadataError, match="timestamp"):
        site.updater().refresh()


@pytest.mark.parametrize("mixed", ["snapshot", "bin"])
def test_a_mixed_snapshot_is_refused(site: Site, mixed: str) -> None:
    """Metadata of two builds: the older build's snapshot (or bin) under the newer name."""
    site.build()
    before = _site_files(site.out / "tuf")
    folder = site.source / "apps/hello-world/3.0.0"
    folder.mkdir()
    (folder / "hello-world-3.0.0.tar.gz").write_bytes(b"three")
    site.build()
    after = _site_files(site.out / "tuf")
    if mixed == "snapshot":
        site.tuf("2.snapshot.json").write_bytes(before["1.snapshot.json"])
    else:
        for newer in (n for n in after if n.startswith("2.bin-")):
            site.tuf(newer).write_bytes(before[newer.replace("2.", "1.", 1)])
    # Refused by the snapshot's pin either way: by its hash, or (when the older file is
    # longer than the pinned length) by the length cap while downloading.
    refused = (exceptions.LengthOrHashMismatchError, exceptions.DownloadLengthMismatchError)
    with pytest.raises(refused):
        _download(site.updater(), "apps/hello-world/3.0.0/hello-world-3.0.0.tar.gz")


def test_a_client_follows_a_root_rotation(site: Site) -> None:
    """build, rotate-key --tuf-root, build with the new key: a client that trusts only the
    first root updates through root 2 (signed by the old and the new key)."""
    site.build()
    old_client = site.updater()
    assert _download(old_client, ARTIFACT)
    new_path = site.tmp / "new.key"
    new = write_new_key_file(new_path)
    result = CliRunner().invoke(
        main,
        [
            "rotate-key",
            str(site.source),
            "--old-key-file",
            str(site.key_path),
            "--new-key-file",
            str(new_path),
            "--tuf-root",
            str(site.tuf("root.json")),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (site.source / "keys/tuf/2.root.json").is_file()
    site.build(environ={"APPSHELF_SIGNING_KEY": new_path.read_text()})
    handed = (site.source / "keys/tuf/2.root.json").read_bytes()
    assert site.tuf("2.root.json").read_bytes() == handed, handed[:300]
    root2 = json.loads(handed)
    assert len(root2["signatures"]) == 2
    assert site.tuf("root.json").read_bytes() == site.tuf("2.root.json").read_bytes()
    assert json.loads(site.tuf("timestamp.json").read_bytes())["signed"]["version"] == 2
    follower = site.updater(site.tmp / "client-1")
    assert _download(follower, ARTIFACT)
    trusted = json.loads((site.tmp / "client-1/root.json").read_bytes())
    assert trusted["signed"]["version"] == 2
    assert _keyids(trusted) == {_tuf_keyid(new)}


def test_a_new_key_without_a_tuf_handover_is_refused(site: Site) -> None:
    site.build()
    new_path = site.tmp / "new.key"
    write_new_key_file(new_path)
    result = CliRunner().invoke(
        main,
        [
            "rotate-key",
            str(site.source),
            "--old-key-file",
            str(site.key_path),
            "--new-key-file",
            str(new_path),
        ],
    )
    assert result.exit_code == 1 and "--tuf-root" in result.output
    assert "Traceback" not in result.output
    # A rotation statement without the TUF root: the build says what is missing.
    from appshelf.signing.keys import load_key_file
    from appshelf.signing.releaselog import make_rotation

    (site.source / "keys").mkdir()
    (site.source / "keys/rotate.json").write_bytes(
        make_rotation(site.key, load_key_file(new_path), site.url, "2026-01-15T12:00:00Z")
    )
    before = _site_files(site.out)
    with pytest.raises(SigningKeyError, match=r"rotate-key .*--tuf-root"):
        site.build(environ={"APPSHELF_SIGNING_KEY": new_path.read_text()})
    assert _site_files(site.out) == before


def test_deterministic_and_unchanged_when_nothing_changed(site: Site) -> None:
    now = _now()
    first = site.build(now=now)
    assert first.changed
    assert not site.build(now=now).changed  # a no-op rebuild writes nothing
    other = site.tmp / "other"
    site.build(out=other, now=now, cache=False)
    assert _site_files(other / "tuf") == _site_files(site.out / "tuf")


@pytest.mark.parametrize("where", ["previous", "previous-url"])
def test_versions_carry_over_from_the_published_state(site: Site, where: str) -> None:
    site.build()
    folder = site.source / "apps/hello-world/3.0.0"
    folder.mkdir()
    (folder / "hello-world-3.0.0.tar.gz").write_bytes(b"three")
    fresh = site.tmp / "fresh"
    if where == "previous":
        site.build(out=fresh, previous=site.out)
    else:
        site.build(out=fresh, previous_source=HttpSource(site.url))
    timestamp = json.loads((fresh / "tuf/timestamp.json").read_bytes())["signed"]
    assert timestamp["version"] == 2 and timestamp["meta"]["snapshot.json"]["version"] == 2
    shutil.rmtree(site.out)
    shutil.copytree(fresh, site.out)
    assert _download(site.updater(), "apps/hello-world/3.0.0/hello-world-3.0.0.tar.gz") == b"three"


def test_forged_previous_tuf_metadata_is_refused(site: Site) -> None:
    site.build()
    timestamp = json.loads(site.tuf("timestamp.json").read_bytes())
    timestamp["signed"]["version"] = 99
    site.tuf("timestamp.json").write_text(json.dumps(timestamp))
    with pytest.raises(OutputError, match=r"tuf/timestamp\.json: signature"):
        site.build(resign=True)


def test_the_number_of_bins_cannot_change(site: Site) -> None:
    site.build()
    toml = site.source / "registry.toml"
    toml.write_text(toml.read_text().replace("bins = 16", "bins = 32"))
    with pytest.raises(OutputError, match="number of bins cannot change"):
        site.build()


def _keyids(root: dict[str, object]) -> set[str]:
    signed = root["signed"]
    assert isinstance(signed, dict)
    return set(signed["keys"])


def _tuf_keyid(key: RegistryKey) -> str:
    return compute_default_keyid("ed25519", "ed25519", {"public": key.public_hex})


def test_a_handover_root_not_signed_by_the_old_key_is_refused(site: Site) -> None:
    """keys/tuf/2.root.json is input: one signed by the new key alone (someone who has
    only the new key) cannot take the TUF roles over."""
    from appshelf.builder.tufrepo import encode_signed, root_for
    from appshelf.signing.keys import load_key_file
    from appshelf.signing.releaselog import make_rotation
    from appshelf.signing.tufkeys import RegistrySigner

    site.build()
    new_path = site.tmp / "new.key"
    new = write_new_key_file(new_path)
    (site.source / "keys/tuf").mkdir(parents=True)
    (site.source / "keys/rotate.json").write_bytes(
        make_rotation(site.key, load_key_file(new_path), site.url, "2026-01-15T12:00:00Z")
    )
    forged = root_for(new.public_bytes, 2, _now() + timedelta(days=365))
    (site.source / "keys/tuf/2.root.json").write_bytes(encode_signed(forged, [RegistrySigner(new)]))
    before = _site_files(site.out)
    with pytest.raises(SigningKeyError, match=r"keys/tuf/2\.root\.json: not signed"):
        site.build(environ={"APPSHELF_SIGNING_KEY": new_path.read_text()})
    assert _site_files(site.out) == before


def test_rotate_key_refuses_a_tuf_root_of_another_key(site: Site) -> None:
    site.build()
    other = site.tmp / "other.key"
    write_new_key_file(other)
    new_path = site.tmp / "new.key"
    write_new_key_file(new_path)
    result = CliRunner().invoke(
        main,
        [
            "rotate-key",
            str(site.source),
            "--old-key-file",
            str(other),
            "--new-key-file",
            str(new_path),
            "--tuf-root",
            str(site.tuf("root.json")),
        ],
    )
    assert result.exit_code == 1 and result.output.startswith("Error: --tuf-root")
    assert not (site.source / "keys").exists()
