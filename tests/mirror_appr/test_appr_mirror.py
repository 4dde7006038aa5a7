"""The appr/CNR mirror, read by the real appr 0.7.4 client (in its own venv, made by
scripts/test.sh) from a built example registry on a 127.0.0.1 host that serves folders
as nginx and GitHub Pages do (static_host.py)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from appshelf.client import RegistryClient, trusted_keys
from appshelf.client.verify import verify_registry
from appshelf.formats import appr
from appshelf.formats.canonical import sha256_hex
from appshelf.site import site_generator
from conftest import FIXED_NOW, REPO_ROOT, build

from .static_host import NginxLikeServer

APPR_PYTHON = Path(
    os.environ.get("APPSHELF_APPR_PYTHON", REPO_ROOT / ".tools/appr-venv/bin/python")
)
DRIVER = Path(__file__).with_name("appr_driver.py")
CHANNELS = 'stable = "1.1.0"\nbeta = "2.0.0-beta.1"\n'


@pytest.fixture(scope="session")
def appr_python() -> Path:
    """The appr venv's Python; without it, skip (fail in CI, where it must exist)."""
    ok = APPR_PYTHON.exists() and (
        subprocess.run([APPR_PYTHON, "-c", "import appr.client"], capture_output=True).returncode
        == 0
    )
    if not ok:
        message = (
            f"the appr 0.7.4 client is not installed at {APPR_PYTHON}: run scripts/test.sh "
            "(it creates .tools/appr-venv from PyPI) or set APPSHELF_APPR_PYTHON"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return APPR_PYTHON


@dataclass
class Mirror:
    server: NginxLikeServer
    python: Path
    home: Path

    @property
    def host(self) -> str:
        return self.server.url.rstrip("/")

    def appr(self, *args: str, output: str = "json") -> object:
        """Run one appr command; its --output json as data."""
        env = {"HOME": str(self.home), "PATH": os.environ.get("PATH", ""), "NO_PROXY": "*"}
        result = subprocess.run(
            [str(self.python), str(DRIVER), *args, "--output", output],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout) if output == "json" else result.stdout


@pytest.fixture
def served(example_source: Path, tmp_path: Path) -> Iterator[NginxLikeServer]:
    """The example registry with channels and the mirror on, built and served."""
    (example_source / "apps/hello-world/channels.toml").write_text(CHANNELS)
    with (example_source / "registry.toml").open("a") as config:
        config.write("\n[mirrors]\nappr = true\n")
    with NginxLikeServer(tmp_path / "www") as server:
        build(example_source, server.root, base_url=server.url, generators=(site_generator(),))
        yield server


@pytest.fixture
def mirror(served: NginxLikeServer, tmp_path: Path, appr_python: Path) -> Mirror:
    home = tmp_path / "home"
    home.mkdir()
    return Mirror(served, appr_python, home)


def _artifact(mirror: Mirror, app: str, version: str) -> Path:
    folder = mirror.server.root / f"apps/{app}/{version}"
    return next(p for p in folder.iterdir() if p.name not in ("manifest.json", "index.html"))


def test_appr_lists_shows_and_pulls(mirror: Mirror, tmp_path: Path) -> None:
    host = mirror.host
    version = mirror.appr("version", host)
    assert version == {"api-version": {"appr-api": "0.7.4"}, "client-version": "0.7.4"}

    packages = mirror.appr("list", host)
    assert isinstance(packages, list)
    by_name = {p["name"]: p for p in packages}
    assert sorted(by_name) == [
        f"appshelf/{k}"
        for k in ("hello-world", "http-client", "jira-sync", "kv-store", "slack-notify")
    ]
    hello = by_name["appshelf/hello-world"]
    assert hello["releases"] == ["2.0.0-beta.1", "1.1.0", "1.0.0"] and hello["default"] == "1.1.0"
    assert "appshelf/kv-store" in str(mirror.appr("list", host, output="text"))

    shown = mirror.appr("show", f"{host}/appshelf/hello-world")
    assert isinstance(shown, list)
    assert [r["release"] for r in shown] == ["2.0.0-beta.1", "1.1.0", "1.0.0"]
    one = mirror.appr("show", f"{host}/appshelf/hello-world", "-v", "1.0.0")
    assert isinstance(one, list) and [r["release"] for r in one] == ["1.0.0"]
    assert one[0]["content"]["mediaType"] == "application/vnd.appr.package.appshelf.v0.tar+gzip"

    channels = mirror.appr("channel", f"{host}/appshelf/hello-world")
    assert channels == [
        {"current": "2.0.0-beta.1", "name": "beta", "releases": ["2.0.0-beta.1"]},
        {"current": "1.1.0", "name": "stable", "releases": ["1.1.0"]},
    ]
    assert mirror.appr("channel", f"{host}/appshelf/kv-store") == []  # none: 404 -> []

    pulls = [
        ("hello-world:beta", [], "2.0.0-beta.1"),  # by channel
        ("hello-world:stable", ["--media-type", "appshelf"], "1.1.0"),
        ("hello-world@1.0.0", [], "1.0.0"),  # by version, media type "-"
        ("hello-world", [], "1.1.0"),  # default
        ("kv-store@1.1.1", ["--media-type", "appshelf"], "1.1.1"),
    ]
    for index, (name, options, expected) in enumerate(pulls):
        dest = tmp_path / f"pull{index}"
        dest.mkdir()
        app = name.split(":")[0].split("@")[0]
        result = mirror.appr("pull", f"{host}/appshelf/{name}", "--dest", str(dest), *options)
        assert isinstance(result, dict)
        folder = Path(result["path"])
        assert folder == dest / f"appshelf_{app}_{expected}"
        artifact = _artifact(mirror, app, expected)
        assert [p.name for p in folder.iterdir()] == [artifact.name]
        assert (folder / artifact.name).read_bytes() == artifact.read_bytes()

    # By digest (appr's @sha256:), and as the tarball itself.
    digest = one[0]["content"]["digest"]
    dest = tmp_path / "by-digest"
    dest.mkdir()
    mirror.appr(
        "pull",
        f"{host}/appshelf/hello-world@sha256:{digest}",
        "--dest",
        str(dest),
        "--tarball",
        "--media-type",
        "appshelf",
    )
    (tarball,) = dest.iterdir()
    assert tarball.name == f"appshelf_hello-world_{digest[:8]}.tar.gz"
    with tarfile.open(tarball) as archive:
        assert archive.getnames() == ["hello-world-1.0.0.tar.gz"]
    # appr's digest is over the uncompressed tar
    assert hashlib.sha256(gzip.decompress(tarball.read_bytes())).hexdigest() == digest


def test_the_snapshot_pins_every_mirror_file(served: NginxLikeServer, tmp_path: Path) -> None:
    root = served.root
    keys = trusted_keys(allow_dev_key=True)
    with RegistryClient(
        served.url,
        keys,
        allow_dev_key=True,
        state_dir=tmp_path / "state",
        clock=lambda: FIXED_NOW,
    ) as client:
        report = verify_registry(client)
        assert report.ok, report.failures
    snapshot = json.loads((root / "snapshot.json").read_bytes())["signed"]
    pin = snapshot["meta"][appr.PINS]
    data = (root / appr.PINS).read_bytes()
    assert (pin["sha256"], pin["length"]) == (sha256_hex(data), len(data))
    pins = json.loads(data)
    on_disk = {p.relative_to(root).as_posix() for p in (root / "cnr").rglob("*") if p.is_file()} - {
        appr.PINS
    }
    assert set(pins["files"]) == on_disk
    for path, digest in pins["files"].items():
        body = (root / path).read_bytes()
        assert digest == {"sha256": sha256_hex(body), "length": len(body)}


def test_the_host_redirects_folders_and_ignores_queries(served: NginxLikeServer) -> None:
    base = served.url + "cnr/api/v1/packages"
    first = requests.get(base + "?media_type=x", allow_redirects=False, timeout=5)
    assert first.status_code == 301
    assert first.headers["Location"] == "/cnr/api/v1/packages/?media_type=x"
    listing = requests.get(base, timeout=5)
    assert listing.status_code == 200 and listing.json()[0]["name"] == "appshelf/hello-world"
    pull = requests.get(
        base + "/appshelf/hello-world/1.0.0/appshelf/pull", params={"format": "json"}, timeout=5
    )
    assert pull.json()["release"] == "1.0.0"
    assert requests.get(served.url + "cnr/api/", timeout=5).status_code == 404  # no listing


def test_a_rebuild_writes_nothing_and_turning_it_off_removes_it(
    served: NginxLikeServer, example_source: Path
) -> None:
    root = served.root
    again = build(example_source, root, base_url=served.url, generators=(site_generator(),))
    assert (again.files_written, again.changed) == (0, False)
    config = example_source / "registry.toml"
    config.write_text(config.read_text().replace("appr = true", "appr = false"))
    off = build(example_source, root, base_url=served.url, generators=(site_generator(),))
    assert not (root / "cnr").exists() and off.files_removed > 0
    assert appr.PINS not in json.loads((root / "snapshot.json").read_bytes())["signed"]["meta"]


def test_package_blob_is_deterministic_stored_gzip() -> None:
    blob, digest = appr.package_blob("a.txt", b"hello\n", 1767225600)
    assert blob == appr.package_blob("a.txt", b"hello\n", 1767225600)[0]
    assert blob[:3] == b"\x1f\x8b\x08" and appr.unpack_blob(blob) == {"a.txt": b"hello\n"}
    big = bytes(range(256)) * 600  # more than one stored block (65,535 bytes)
    assert appr.unpack_blob(appr.package_blob("b", big, 0)[0]) == {"b": big}
    assert len(digest) == 64
