"""The bundle reader raises only its own error, whatever the bytes or tar structure."""

from __future__ import annotations

import gzip
import hashlib
import tarfile

import nacl.signing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appshelf.errors import BundleError
from appshelf.formats.mpkverify import verify_bundle
from mpk_helpers import Entry, bundle, tar_gz

KEY = nacl.signing.SigningKey(hashlib.sha256(b"appshelf mpk properties").digest())
VALID = bundle(KEY)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(data: bytes) -> str:
    """'ok' or 'refused'; any other exception fails the property."""
    try:
        verify_bundle(data, package=None, app_version=None)
    except BundleError as exc:
        assert exc.field and exc.reason
        return "refused"
    return "ok"


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    outcome(data)


@SETTINGS
@given(st.binary(max_size=4096))
def test_arbitrary_gzip_payloads(data: bytes) -> None:
    outcome(gzip.compress(data, mtime=0))


@SETTINGS
@given(st.integers(0, len(VALID) - 1), st.integers(0, 255), st.integers(1, 4))
def test_mutated_valid_bundle(offset: int, value: int, repeat: int) -> None:
    data = bytearray(VALID)
    for i in range(repeat):
        data[(offset + i * 97) % len(data)] = value
    outcome(bytes(data))


@SETTINGS
@given(st.integers(0, len(gzip.decompress(VALID)) - 1), st.binary(min_size=1, max_size=16))
def test_mutated_tar_inside_good_gzip(offset: int, patch: bytes) -> None:
    raw = bytearray(gzip.decompress(VALID))
    raw[offset : offset + len(patch)] = patch
    outcome(gzip.compress(bytes(raw), mtime=0))


_names = st.sampled_from(
    [
        "manifest.json",
        "app.wasm",
        "abi.json",
        "./app.wasm",
        "._app.wasm",
        "../x",
        "/abs",
        "a/b",
        ".",
        "./",
        "a\\b",
        "x" * 300,
    ]
)
_types = st.sampled_from(
    [
        tarfile.REGTYPE,
        tarfile.AREGTYPE,
        tarfile.DIRTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.FIFOTYPE,
        tarfile.CHRTYPE,
        tarfile.CONTTYPE,
        b"Z",
    ]
)
_entries = st.builds(
    Entry,
    name=_names,
    data=st.binary(max_size=64),
    type=_types,
    linkname=st.sampled_from(["", "app.wasm", "/etc/passwd"]),
    pax=st.dictionaries(
        st.sampled_from(["path", "size", "comment", "LIBARCHIVE.xattr.x"]),
        st.text(max_size=12),
        max_size=2,
    ),
)


@SETTINGS
@given(st.lists(_entries, max_size=8), st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]))
def test_arbitrary_tar_structures(entries: list[Entry], fmt: int) -> None:
    try:
        data = tar_gz(entries, fmt)
    except (ValueError, tarfile.TarError, UnicodeError):
        return  # tarfile itself will not write it
    assert outcome(data) == "refused" or any(e.name == "manifest.json" for e in entries)


@SETTINGS
@given(st.lists(_entries, max_size=4))
def test_valid_bundle_with_arbitrary_extras_is_refused_or_clean(extra: list[Entry]) -> None:
    try:
        data = bundle(KEY, extra=extra)
    except (ValueError, tarfile.TarError, UnicodeError):
        return
    result = outcome(data)
    if result == "ok":  # only folders or true sidecars may be added
        # (tar reads an old-style regular entry named "x/" as a folder, as extractors do)
        folder = (tarfile.DIRTYPE, tarfile.AREGTYPE)
        assert all(
            (e.type in folder and e.name.endswith("/"))
            or e.type == tarfile.DIRTYPE
            or e.name.startswith("._")
            for e in extra
        )
