"""Calimero .mpk bundles: every real fixture gets its folder's verdict, and hostile
archives built here are refused with the field and reason (docs/spec.md section 12)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import zlib
from pathlib import Path

import nacl.signing
import pytest

from appshelf.errors import BundleError
from appshelf.formats.mpk import MAX_ENTRIES, MAX_MANIFEST_BYTES, MAX_UNPACKED_BYTES, read_archive
from appshelf.formats.mpkverify import (
    PUBLIC_KEYS,
    check_production,
    verify_bundle,
    verify_manifest,
    verify_signature,
)
from mpk_helpers import (
    ABI,
    WASM,
    Entry,
    artifact,
    b64url,
    base_manifest,
    bundle,
    sign_manifest,
    tar_gz,
)

FIXTURES = Path(__file__).resolve().parent / "vectors" / "calimero"
# ../shared beside the checkout (CI), or beside the folder of worktrees.
_REPO = Path(__file__).resolve().parents[1]
SHARED = next(
    (
        p / "shared/vectors/calimero"
        for p in (_REPO.parent, _REPO.parent.parent)
        if (p / "shared").is_dir()
    ),
    _REPO.parent / "shared/vectors/calimero",
)
DEV_DID = "did:key:z6MknF3p5L5FDHJQ7FREUapuX4Wmp4MtF6WrHYaXS2B3eZQd"
TEST_DID = "did:key:z6MktDyUgjyGaEMxMyuZMs2v2L46zvVKNqB5K3KTvFxudtKL"
KEY = nacl.signing.SigningKey(hashlib.sha256(b"appshelf mpk tests").digest())


def _source_hashes() -> dict[str, str]:
    """SOURCE.md's bundleHash for each signed fixture: its own independent check."""
    found: dict[str, str] = {}
    current = None
    for line in (FIXTURES / "SOURCE.md").read_text().splitlines():
        name = re.match(r"- \*\*`([^`]+)`\*\*", line)
        if name:
            current = name.group(1)
        digest = re.search(r"bundleHash \(sha256 of JCS\) `([0-9a-f]{64})`", line)
        if digest and current:
            found[current] = digest.group(1)
    return found


BUNDLE_HASHES = _source_hashes()


def fixtures(folder: str) -> list[Path]:
    return sorted(
        p
        for p in (FIXTURES / folder).iterdir()
        if p.suffix == ".mpk" or not p.name.endswith(".mpk.manifest.json")
    )


def refusal(data: bytes, **expect: str | None) -> BundleError:
    with pytest.raises(BundleError) as caught:
        verify_bundle(data, package=expect.get("package"), app_version=expect.get("version"))
    return caught.value


# --- the real fixtures -------------------------------------------------------------


@pytest.mark.parametrize("path", fixtures("pass"), ids=lambda p: p.name)
def test_pass_fixtures_verify_and_are_refused_in_production(path: Path) -> None:
    data = path.read_bytes()
    inner = json.loads((path.parent / (path.name + ".manifest.json")).read_bytes())
    verified = verify_bundle(data, package="com.calimero.kv-store", app_version=inner["appVersion"])
    assert verified.signer_id == DEV_DID
    assert verified.bundle_hash == BUNDLE_HASHES[path.name]
    assert verified.manifest == inner
    assert {ref.path for ref in verified.artifacts} == {inner["wasm"]["path"], "abi.json"}
    with pytest.raises(BundleError, match="development key") as caught:
        check_production(verified)
    assert caught.value.field == "signerId"


@pytest.mark.parametrize("path", fixtures("pass-hash-null"), ids=lambda p: p.name)
def test_hash_null_fixtures_have_good_signatures_but_are_refused(path: Path) -> None:
    if path.suffix == ".mpk":
        manifest = (path.parent / (path.name + ".manifest.json")).read_bytes()
        error = refusal(path.read_bytes())
    else:
        manifest = path.read_bytes()
        with pytest.raises(BundleError) as caught:
            verify_manifest(manifest)
        error = caught.value
    document = json.loads(manifest)
    _, bundle_hash = verify_signature(document)  # the signature itself is good
    assert bundle_hash == BUNDLE_HASHES[path.name]
    assert error.field.endswith(".hash") and "got null" in error.reason


def test_unlicensed_mero_drive_manifest_from_shared() -> None:
    """Not copied into tests/ (no licence found): checked only where ../shared is."""
    path = (
        SHARED / "pass-hash-null" / "apps__apps__mero-drive__logic__res__bundle-temp__manifest.json"
    )
    if not path.is_file():
        pytest.skip("../shared/vectors/calimero is not here (it is not copied: no licence)")
    document = json.loads(path.read_bytes())
    assert verify_signature(document)[1] == BUNDLE_HASHES[path.name]
    with pytest.raises(BundleError, match="got null"):
        verify_manifest(path.read_bytes())


FAIL_REASONS = {
    "app-registry__kvstore-0.2.5@c88efd9e.mpk": ("signature", "not signed"),
    "app-registry__packages__backend__artifacts__com.calimero.frontend-demo-1.0.0.mpk": (
        "signature",
        "not signed",
    ),
    "app-registry__packages__cli__.local-registry__artifacts__com.calimero.kv-store-1.0.0.mpk": (
        "signature",
        "not signed",
    ),
    "battleships__logic__res__battleships-0.3.0@857082d9.mpk": ("services[0].wasm.hash", "null"),
    "battleships__logic__res__battleships@1fb4b2a3.mpk": ("._manifest.json", "more than once"),
    "app-registry__packages__backend__manifest.json": ("wasm.hash", "null"),
    "app-registry__packages__cli__examples__signed-com-example-chat-channel-manifest.json": (
        "package",
        "required",
    ),
    "app-registry__packages__cli__examples__signed-com-example-chat-manager-manifest.json": (
        "package",
        "required",
    ),
    "app-registry__packages__cli__examples__signed-com-example-simple-app-manifest.json": (
        "package",
        "required",
    ),
}


@pytest.mark.parametrize("path", fixtures("fail"), ids=lambda p: p.name)
def test_fail_fixtures_are_refused(path: Path) -> None:
    field, reason = FAIL_REASONS[path.name]
    if path.suffix == ".mpk":
        error = refusal(path.read_bytes())
    else:
        with pytest.raises(BundleError) as caught:
            verify_manifest(path.read_bytes())
        error = caught.value
    assert error.field == field and reason in error.reason


def test_fail_fixtures_also_break_their_stated_rule() -> None:
    """SOURCE.md's own reasons, each checked past the first refusal."""
    stale = FIXTURES / "fail" / "battleships__logic__res__battleships-0.3.0@857082d9.mpk"
    document = json.loads(stale.with_name(stale.name + ".manifest.json").read_bytes())
    verify_signature(document)  # signed, yet every declared size is stale
    archive = read_archive(stale.read_bytes())
    assert archive.files["lobby.wasm"].size == 460833 != document["services"][0]["wasm"]["size"]
    backend = json.loads(
        (FIXTURES / "fail" / "app-registry__packages__backend__manifest.json").read_bytes()
    )
    with pytest.raises(BundleError, match="decodes to 37 bytes") as caught:
        verify_signature(backend)
    assert caught.value.field == "signature.signature"
    legacy = json.loads(
        (
            FIXTURES
            / "fail"
            / "app-registry__packages__cli__examples__signed-com-example-simple-app-manifest.json"
        ).read_bytes()
    )
    with pytest.raises(BundleError, match="must be 'ed25519'"):
        verify_signature(legacy)


def test_every_fixture_has_a_test() -> None:
    names = {p.name for folder in ("pass", "pass-hash-null", "fail") for p in fixtures(folder)}
    listed = set(re.findall(r"- \*\*`([^`]+)`\*\*", (FIXTURES / "SOURCE.md").read_text()))
    assert names == listed - {"apps__apps__mero-drive__logic__res__bundle-temp__manifest.json"}
    assert set(FAIL_REASONS) == {p.name for p in fixtures("fail")}


def test_known_public_keys() -> None:
    assert set(PUBLIC_KEYS) == {DEV_DID, TEST_DID}


# --- bundles made here --------------------------------------------------------------


def test_own_bundle_verifies_in_production() -> None:
    verified = verify_bundle(bundle(KEY), package="com.example.kv", app_version="1.0.0")
    check_production(verified)
    assert verified.public_key_note is None
    assert verified.public_key == bytes(KEY.verify_key)


def test_underscore_keys_are_unsigned_and_other_keys_signed() -> None:
    signed = sign_manifest(base_manifest(), KEY)
    verify_signature({**signed, "_binary": "anything", "_x": [1]})
    for change in ({"appVersion": "1.0.1"}, {"signerId": TEST_DID}, {"extra": 1}):
        with pytest.raises(BundleError):
            verify_signature({**signed, **change})
    without = dict(signed)
    del without["signerId"]
    with pytest.raises(BundleError, match="does not verify"):
        verify_signature(without)


def test_package_and_version_must_match() -> None:
    data = bundle(KEY)
    assert refusal(data, package="com.example.other").field == "package"
    error = refusal(data, package="com.example.kv", version="1.0.1")
    assert error.field == "appVersion" and "'1.0.0'" in error.reason


@pytest.mark.parametrize(
    ("files", "field", "reason"),
    [
        ({"app.wasm": WASM}, "abi.path", "not in the archive"),
        ({"app.wasm": WASM + b"x", "abi.json": ABI}, "wasm.size", "declares"),
        ({"app.wasm": WASM[:-1] + b"X", "abi.json": ABI}, "wasm.hash", "sha256"),
        ({"app.wasm": WASM, "abi.json": ABI, "extra.bin": b"x"}, "extra.bin", "not declared"),
    ],
)
def test_contents_must_be_exactly_what_is_signed(
    files: dict[str, bytes], field: str, reason: str
) -> None:
    error = refusal(bundle(KEY, files=files))
    assert error.field == field and reason in error.reason


def test_appledouble_sidecars_are_tolerated_only_as_such() -> None:
    sidecar = b"\x00\x05\x16\x07" + b"\x00" * 100
    assert verify_bundle(
        bundle(KEY, extra=[Entry("._app.wasm", sidecar)]), package=None, app_version=None
    )
    assert verify_bundle(
        bundle(KEY, extra=[Entry("./", type=tarfile.DIRTYPE), Entry("._.", sidecar)]),
        package=None,
        app_version=None,
    )
    for entry in (
        Entry("._app.wasm", b"not apple double"),
        Entry("._other.wasm", sidecar),
        Entry("._app.wasm", sidecar + b"\x00" * 5000),
    ):
        assert refusal(bundle(KEY, extra=[entry])).field == entry.name


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (Entry("link", type=tarfile.SYMTYPE, linkname="/etc/passwd"), "symbolic link"),
        (Entry("hard", type=tarfile.LNKTYPE, linkname="app.wasm"), "hard link"),
        (Entry("fifo", type=tarfile.FIFOTYPE), "device or FIFO"),
        (Entry("dev", type=tarfile.CHRTYPE), "device or FIFO"),
        (Entry("../escape.wasm", b"x"), "leaves the bundle"),
        (Entry("sub/../../escape", b"x"), "leaves the bundle"),
        (Entry("/etc/cron.d/x", b"x"), "absolute path"),
        (Entry("back\\slash", b"x"), "backslash"),
        (Entry("app.wasm", WASM), "more than once"),
        (Entry("./manifest.json", b"{}"), "more than once"),
    ],
)
def test_hostile_members_are_refused(entry: Entry, reason: str) -> None:
    assert reason in refusal(bundle(KEY, extra=[entry])).reason


def test_symlinked_artifact_is_refused_even_when_declared() -> None:
    manifest = base_manifest()
    data = bundle(
        KEY,
        manifest,
        files={"abi.json": ABI},
        extra=[Entry("app.wasm", type=tarfile.SYMTYPE, linkname="/etc/passwd")],
    )
    assert refusal(data).field == "app.wasm"


def test_declared_path_must_be_safe() -> None:
    manifest = base_manifest()
    manifest["wasm"] = {**artifact("../app.wasm", WASM)}
    assert refusal(bundle(KEY, manifest)).field == "wasm.path"


def test_too_many_entries() -> None:
    extra = [Entry(f"d{i}/", type=tarfile.DIRTYPE) for i in range(MAX_ENTRIES)]
    assert "more than 1000 entries" in refusal(bundle(KEY, extra=extra)).reason


def test_manifest_over_one_mib() -> None:
    manifest = base_manifest()
    manifest["metadata"] = {"name": "x", "description": "d" * MAX_MANIFEST_BYTES}
    error = refusal(bundle(KEY, manifest))
    assert error.field == "manifest.json" and "1,048,576" in error.reason


def _zeros_gzip(header: bytes, size: int) -> bytes:
    """A gzip stream of a tar header followed by `size` zero bytes, made in chunks."""
    out = io.BytesIO()
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    out.write(compressor.compress(header))
    chunk = bytes(1 << 20)
    left = size
    while left > 0:
        out.write(compressor.compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    out.write(compressor.flush())
    return out.getvalue()


def test_zip_bomb_by_declared_size_is_refused_before_reading() -> None:
    info = tarfile.TarInfo("app.wasm")
    info.size = MAX_UNPACKED_BYTES + 1
    data = _zeros_gzip(info.tobuf(format=tarfile.GNU_FORMAT), 1 << 20)
    assert "unpacks to more than" in refusal(data).reason


def test_zip_bomb_in_a_pax_header_is_cut_off() -> None:
    """A pax header the tar reader would buffer whole: the stream cap stops it."""
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = MAX_UNPACKED_BYTES + (64 << 20)
    data = _zeros_gzip(info.tobuf(format=tarfile.USTAR_FORMAT), info.size)
    assert len(data) < 4 << 20  # a small file ...
    assert "unpacks to more than" in refusal(data).reason  # ... refused, not swallowed


def test_many_files_adding_up_past_the_limit() -> None:
    info = tarfile.TarInfo("a.bin")
    info.size = MAX_UNPACKED_BYTES // 2 + 1
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    second = tarfile.TarInfo("b.bin")
    second.size = info.size
    raw = io.BytesIO()
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    raw.write(compressor.compress(header))
    chunk = bytes(1 << 20)
    left = info.size
    while left > 0:
        raw.write(compressor.compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    pad = -info.size % 512
    raw.write(compressor.compress(bytes(pad) + second.tobuf(format=tarfile.GNU_FORMAT)))
    raw.write(compressor.flush())
    assert "unpacks to more than" in refusal(raw.getvalue()).reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not gzip"),
        (b"PK\x03\x04zipfile", "not gzip"),
        (gzip.compress(b"not a tar at all" * 100, mtime=0), "not a readable gzip tar"),
        (bundle(KEY)[:-40], "not a readable gzip tar"),
        (tar_gz([Entry("app.wasm", WASM)]), "missing"),
    ],
)
def test_not_a_bundle(data: bytes, reason: str) -> None:
    assert reason in str(refusal(data))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"publicKey": b64url(bytes(KEY.verify_key)) + "="}, "signature.publicKey"),
        ({"publicKey": b64url(bytes(32))[:-1]}, "signature.publicKey"),
        ({"signature": "A" * 86}, "signature.signature"),
        ({"signature": "+" * 86}, "signature.signature"),
        ({"algorithm": "Ed25519"}, "signature.algorithm"),
        (
            {"publicKey": b64url(bytes(nacl.signing.SigningKey.generate().verify_key))},
            "signature.signature",
        ),
    ],
)
def test_signature_block_errors(change: dict[str, str], field: str) -> None:
    signed = sign_manifest(base_manifest(), KEY)
    signed["signature"] = {**signed["signature"], **change}
    with pytest.raises(BundleError) as caught:
        verify_signature(signed)
    assert caught.value.field == field


def test_non_canonical_base64_tail_bits_are_refused() -> None:
    signed = sign_manifest(base_manifest(), KEY)
    text = signed["signature"]["publicKey"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]  # same 32 bytes, other tail bits
    signed["signature"]["publicKey"] = twin
    with pytest.raises(BundleError, match="canonical"):
        verify_signature(signed)
