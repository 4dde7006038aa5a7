"""A .mpk artifact is verified when the source tree is read: a clear `Error:` naming the
file, the field and the reason, exit 1; the verified signer is on the parsed release."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nacl.signing
import pytest
from click.testing import CliRunner

from appshelf import filestat
from appshelf.cli import main
from appshelf.errors import SourceTreeError
from appshelf.signing.keys import write_new_key_file
from appshelf.source.tree import load_source_tree
from conftest import build
from mpk_helpers import base_manifest, bundle

FIXTURE = (
    Path(__file__).resolve().parent
    / "vectors/calimero/pass/mero-js__tests__e2e__assets__kv-store@ad261ac6.mpk"
)
KEY = nacl.signing.SigningKey(hashlib.sha256(b"appshelf mpk build tests").digest())
DEV_DID = "did:key:z6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQd"


def make_tree(
    root: Path, app_toml_extra: str = 'calimero_package = "com.calimero.kv-store"\n'
) -> Path:
    (root / "apps/kv-store/0.2.11").mkdir(parents=True)
    (root / "registry.toml").write_text(
        '[registry]\nname = "Calimero apps"\nbase_url = "https://apps.example.com/"\n'
    )
    (root / "apps/kv-store/app.toml").write_text(
        'name = "KV Store"\ndescription = "Calimero kv-store."\n' + app_toml_extra
    )
    shutil.copyfile(FIXTURE, root / "apps/kv-store/0.2.11/kv-store.mpk")
    return root


def run(source: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["build", str(source), "-o", str(out), "--no-site", *extra],
        env={"SOURCE_DATE_EPOCH": "1767225600"},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_verified_bundle_builds_and_exposes_its_signer(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src")
    tree = load_source_tree(source)
    version = tree.apps[0].versions[0]
    assert version.bundle is not None and version.bundle.signer_id == DEV_DID
    assert tree.apps[0].calimero_package == "com.calimero.kv-store"
    report = build(source, tmp_path / "out")
    assert report.versions == 1
    assert (tmp_path / "out/apps/kv-store/0.2.11/kv-store.mpk").read_bytes() == FIXTURE.read_bytes()


def test_dev_key_bundle_refused_in_production(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src")
    key_file = tmp_path / "registry.key"
    assert CliRunner().invoke(main, ["keygen", "-o", str(key_file)]).exit_code == 0
    code, output = run(source, tmp_path / "out", "--production", "--key-file", str(key_file))
    assert code == 1
    assert output.startswith("Error:") and "Traceback" not in output
    assert (
        "apps/kv-store/0.2.11/kv-store.mpk: signerId: Calimero bundle refused: signed with Calimero's development key"
        in output
    )
    assert not (tmp_path / "out").exists()


def test_tampered_bundle_is_an_error_naming_file_and_field(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", 'calimero_package = "com.example.kv"\n')
    manifest = base_manifest(version="0.2.11")
    manifest["wasm"]["size"] += 1
    (source / "apps/kv-store/0.2.11/kv-store.mpk").write_bytes(bundle(KEY, manifest))
    code, output = run(source, tmp_path / "out")
    assert code == 1 and output.startswith("Error:")
    assert (
        "apps/kv-store/0.2.11/kv-store.mpk: wasm.size: Calimero bundle refused: declares" in output
    )


def test_package_must_be_the_apps(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", "")  # no calimero_package: the key, kv-store
    code, output = run(source, tmp_path / "out")
    assert code == 1
    assert (
        "kv-store.mpk: package: Calimero bundle refused: is 'com.calimero.kv-store'; this app's package is 'kv-store'"
        in output
    )


def test_version_must_be_the_folders(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src")
    (source / "apps/kv-store/0.2.11").rename(source / "apps/kv-store/0.2.12")
    code, output = run(source, tmp_path / "out")
    assert code == 1 and "appVersion: Calimero bundle refused: is '0.2.11'" in output


def test_own_key_bundle_builds_in_production(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src", 'calimero_package = "com.example.kv"\n')
    (source / "apps/kv-store/0.2.11/kv-store.mpk").write_bytes(
        bundle(KEY, base_manifest(version="0.2.11"))
    )
    key_file = tmp_path / "registry.key"
    assert CliRunner().invoke(main, ["keygen", "-o", str(key_file)]).exit_code == 0
    code, output = run(source, tmp_path / "out", "--production", "--key-file", str(key_file))
    assert code == 0, output


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"Com.Example"', "lowercase package id"),
        ('"a..b"', "lowercase package id"),
        ('"../x"', "lowercase package id"),
    ],
)
def test_bad_calimero_package(tmp_path: Path, value: str, message: str) -> None:
    source = make_tree(tmp_path / "src", f"calimero_package = {value}\n")
    with pytest.raises(SourceTreeError, match=message) as caught:
        load_source_tree(source)
    assert caught.value.problems[0].field == "calimero_package"


def test_two_apps_cannot_share_a_package(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src")
    shutil.copytree(source / "apps/kv-store", source / "apps/kv-store-copy")
    with pytest.raises(SourceTreeError, match="also the Calimero package of app 'kv-store'"):
        load_source_tree(source)


def test_external_mpk_is_refused(tmp_path: Path) -> None:
    source = make_tree(tmp_path / "src")
    (source / "apps/kv-store/0.2.11/kv-store.mpk").unlink()
    (source / "apps/kv-store/0.2.11/release.toml").write_text(
        'artifact_url = "https://cdn.example.com/kv-store.mpk"\nsha256 = "'
        + "a" * 64
        + '"\nsize = 10\n'
    )
    with pytest.raises(SourceTreeError, match="must be in the version folder") as caught:
        load_source_tree(source)
    assert caught.value.problems[0].field == "artifact_url"


def test_production_rebuild_checks_apps_an_earlier_build_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build cache may not carry a dev-key bundle from a non-production build into
    a production one."""
    monkeypatch.setattr(filestat, "RACY_NS", -(10**18))  # files seconds old count as settled
    source = make_tree(tmp_path / "src")
    key_file = tmp_path / "registry.key"
    write_new_key_file(key_file)
    out = tmp_path / "out"
    build(source, out, key_file=key_file)
    assert build(source, out, key_file=key_file).apps_reused == 1  # the cache is in use
    with pytest.raises(SourceTreeError, match="signed with Calimero's development key"):
        build(source, out, key_file=key_file, production=True)


@pytest.mark.parametrize("signer_is_owner", [True, False])
def test_a_bundle_of_an_owned_app_must_be_signed_by_an_owner(
    tmp_path: Path, signer_is_owner: bool
) -> None:
    """As Calimero gates versions by author: with owners, the bundle's signer id must be
    an active key of one of them (publishers/<id>.toml, `did = ...`)."""
    source = make_tree(
        tmp_path / "src", 'calimero_package = "com.calimero.kv-store"\nowners = ["alice"]\n'
    )
    other = nacl.signing.SigningKey(hashlib.sha256(b"someone else").digest())
    from appshelf.formats.didkey import did_key

    did = DEV_DID if signer_is_owner else did_key(bytes(other.verify_key))
    (source / "publishers").mkdir()
    (source / "publishers/alice.toml").write_text(f'name = "Alice"\n[[keys]]\ndid = "{did}"\n')
    code, output = run(source, tmp_path / "out")
    if signer_is_owner:
        assert code == 0, output
        return
    assert code == 1 and output.startswith("Error:") and "Traceback" not in output
    assert (
        f"apps/kv-store/0.2.11/kv-store.mpk: signature: kv-store 0.2.11: the bundle is signed "
        f"by {DEV_DID}, which is not an active key of its owners ['alice']" in output
    )
    assert not (tmp_path / "out").exists()
