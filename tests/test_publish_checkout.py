"""`appshelf publish --registry-checkout`: the version folder for a pull request. It
writes exactly statement.json, release.toml and the artifact (or the external URL's pins)
into apps/<app>/<version>/ and nothing else, the next build accepts and countersigns
them, and every refusal (unknown app, existing version, links, other bytes, another
registry) exits 1 with one `Error:` line and leaves the checkout as it was."""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from appshelf.cli import main
from conftest import build
from publish_helpers import make_registry, signed_release

BASE = "https://registry.example.com/"


def _tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under root: file bytes, or what a folder or link is."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                found[rel] = "folder"
            else:
                found[rel] = path.read_bytes()
    return found


def _publish(*args: str) -> Result:
    return CliRunner().invoke(main, ["publish", *args])


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    make_registry(root, BASE, tmp_path)
    return root


def test_writes_exactly_the_version_folder_and_the_build_accepts_it(
    checkout: Path, tmp_path: Path
) -> None:
    from appshelf.signing.keys import load_key_file
    from publish_helpers import Publisher

    acme = Publisher("acme", load_key_file(tmp_path / "acme.key"), tmp_path / "acme.key")
    statement, artifact = signed_release(BASE, acme, "kv", "1.0.0", b"kv bytes\n", tmp_path / "a")
    before = _tree(checkout)
    result = _publish(
        "--statement",
        str(statement),
        "--artifact",
        str(artifact),
        "--registry-checkout",
        str(checkout),
    )
    assert result.exit_code == 0, result.output
    after = _tree(checkout)
    added = {k: v for k, v in after.items() if k not in before}
    assert set(added) == {
        "apps/kv/1.0.0",
        "apps/kv/1.0.0/statement.json",
        "apps/kv/1.0.0/release.toml",
        "apps/kv/1.0.0/kv-1.0.0.txt",
    }
    assert {k: after[k] for k in before} == before  # nothing else changed
    assert added["apps/kv/1.0.0/statement.json"] == statement.read_bytes()
    assert added["apps/kv/1.0.0/kv-1.0.0.txt"] == b"kv bytes\n"
    release = tomllib.loads((checkout / "apps/kv/1.0.0/release.toml").read_text())
    assert release == {
        "published": "2026-01-02T03:04:05Z",
        "artifact": "kv-1.0.0.txt",
        "notes": "kv 1.0.0",
        "provides": ["kv.api"],
        "requires": [],
        "dependencies": {},
    }
    report = build(checkout, tmp_path / "site", generators=())
    assert report.versions == 1
    manifest = json.loads((tmp_path / "site/apps/kv/1.0.0/manifest.json").read_bytes())
    assert manifest["signed"]["publisher"]["id"] == "acme"
    digest = hashlib.sha256(statement.read_bytes()).hexdigest()
    assert manifest["signed"]["publisher"]["statement"]["sha256"] == digest


def test_an_external_artifact_is_pinned_in_release_toml(checkout: Path, tmp_path: Path) -> None:
    from appshelf.signing.keys import load_key_file
    from publish_helpers import Publisher

    acme = Publisher("acme", load_key_file(tmp_path / "acme.key"), tmp_path / "acme.key")
    url = "https://github.com/acme/kv/releases/download/v2.0.0/kv-2.0.0.tar.gz"
    statement, _ = signed_release(BASE, acme, "kv", "2.0.0", b"elsewhere", tmp_path / "b", url)
    result = _publish("--statement", str(statement), "--registry-checkout", str(checkout))
    assert result.exit_code == 0, result.output
    folder = checkout / "apps/kv/2.0.0"
    assert sorted(p.name for p in folder.iterdir()) == ["release.toml", "statement.json"]
    release = tomllib.loads((folder / "release.toml").read_text())
    assert release["artifact_url"] == url
    assert release["sha256"] == hashlib.sha256(b"elsewhere").hexdigest()
    assert release["size"] == len(b"elsewhere")
    build(checkout, tmp_path / "site", generators=())
    manifest = json.loads((tmp_path / "site/apps/kv/2.0.0/manifest.json").read_bytes())
    assert manifest["signed"]["artifact"]["url"] == url


def _refused(checkout: Path, args: list[str], *needles: str) -> None:
    before = _tree(checkout)
    result = _publish(*args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
    assert _tree(checkout) == before


def test_refusals_leave_the_checkout_as_it_was(checkout: Path, tmp_path: Path) -> None:
    from appshelf.signing.keys import load_key_file
    from publish_helpers import Publisher

    acme = Publisher("acme", load_key_file(tmp_path / "acme.key"), tmp_path / "acme.key")
    statement, artifact = signed_release(BASE, acme, "kv", "1.0.0", b"one\n", tmp_path / "a")
    ok = ["--statement", str(statement), "--artifact", str(artifact)]
    target = ["--registry-checkout", str(checkout)]
    assert _publish(*ok, *target).exit_code == 0

    _refused(checkout, [*ok, *target], "apps/kv/1.0.0: already exists")
    unknown, unknown_artifact = signed_release(BASE, acme, "ghost", "1.0.0", b"x", tmp_path / "g")
    args = ["--statement", str(unknown), "--artifact", str(unknown_artifact), *target]
    _refused(checkout, args, "the app 'ghost' is not in this registry")
    other, other_artifact = signed_release(
        "https://other.example.com/", acme, "kv", "1.1.0", b"x", tmp_path / "o"
    )
    args = ["--statement", str(other), "--artifact", str(other_artifact), *target]
    _refused(checkout, args, "signed.registry", "https://other.example.com/")
    two, two_artifact = signed_release(BASE, acme, "kv", "2.0.0", b"two\n", tmp_path / "t")
    assert two_artifact is not None
    two_artifact.write_bytes(b"TWO\n")  # not what was signed
    args = ["--statement", str(two), "--artifact", str(two_artifact), *target]
    _refused(checkout, args, "is not the artifact the statement signs")
    _refused(checkout, ["--statement", str(two), *target], "give the artifact file")
    two_artifact.write_bytes(b"two\n")
    # A link anywhere on the way is refused, even to a real folder inside the checkout.
    (checkout / "apps/kv").rename(checkout / "kv-real")
    (checkout / "apps/kv").symlink_to(checkout / "kv-real")
    args = ["--statement", str(two), "--artifact", str(two_artifact), *target]
    _refused(checkout, args, "apps/kv: no such app folder (or a link)")
    (checkout / "apps/kv").unlink()
    (checkout / "kv-real").rename(checkout / "apps/kv")
    (checkout / "apps/kv/2.0.0").symlink_to(tmp_path)  # a link where the version goes
    _refused(checkout, args, "apps/kv/2.0.0")
    (checkout / "apps/kv/2.0.0").unlink()
    linked = tmp_path / "linked-checkout"
    linked.symlink_to(checkout)
    _refused(checkout, [*args[:4], "--registry-checkout", str(linked)], "a link")
    # A statement altered after signing, or signed by someone who does not own the app.
    bad = tmp_path / "bad.json"
    bad.write_bytes(two.read_bytes().replace(b'"notes":"kv 2.0.0"', b'"notes":"kv 2.0.1"'))
    _refused(checkout, ["--statement", str(bad), *args[2:]], "bad signature")
    other_publisher = Publisher("other", load_key_file(tmp_path / "other.key"), tmp_path / "o.key")
    stranger, stranger_artifact = signed_release(
        BASE, other_publisher, "kv", "3.0.0", b"x", tmp_path / "s"
    )
    args3 = ["--statement", str(stranger), "--artifact", str(stranger_artifact), *target]
    _refused(checkout, args3, "'other' is not an owner of kv; its owners are ['acme']")
    assert _publish(*args).exit_code == 0  # and the good one still goes in
