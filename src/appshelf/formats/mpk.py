"""Calimero `.mpk` bundles: the archive and its manifest's shape (docs/spec.md section 12).

A bundle is a gzip-compressed tar holding `manifest.json` and the files it declares
(`wasm`, `abi`, `services[].wasm` / `.abi`, each with `path`, `size` and sha256 `hash`).
Everything here is pure: bytes in, `BundleArchive` / `BundleManifest` out, or a
`BundleError` naming the field and the reason. The signature is checked in
formats/mpkverify.py.

The archive is hostile until proven otherwise. The limits are the Calimero registry's
(its bundle-integrity check): at most 1000 entries, 512 MiB unpacked, a manifest of at
most 1 MiB; only regular files and folders; no member twice; no absolute path and no
`..`. They are enforced while reading, not after: the decompressed stream is cut off at
512 MiB plus room for headers, so a gzip bomb or a huge pax header fails after at most
that many bytes, and no member's data is held in memory except `manifest.json`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any, Final

from appshelf.errors import BundleError, JsonRejectedError
from appshelf.formats.boundedjson import loads_bounded

MAX_ENTRIES: Final = 1000
MAX_UNPACKED_BYTES: Final = 512 * 1024 * 1024
MAX_MANIFEST_BYTES: Final = 1024 * 1024
# Tar headers, pax records and padding on top of the members' data: generous for 1000
# entries, and it bounds what a header can make the tar reader buffer.
MAX_TAR_OVERHEAD: Final = 16 * 1024 * 1024
# A gzip stream is never much larger than what it holds: the .mpk file itself.
MAX_MPK_BYTES: Final = MAX_UNPACKED_BYTES + MAX_TAR_OVERHEAD
MANIFEST_NAME: Final = "manifest.json"
# macOS tar writes each file's extended attributes as an AppleDouble "._<name>" member
# beside it; real signed bundles carry them. They are tolerated only as what they are.
APPLEDOUBLE_MAGIC: Final = b"\x00\x05\x16\x07"
MAX_APPLEDOUBLE_BYTES: Final = 4096
PACKAGE_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*")
MAX_PACKAGE_LENGTH: Final = 128
SHA256_HEX_RE: Final = re.compile(r"[0-9a-fA-F]{64}")
_BAD_NAME_CHARS: Final = re.compile(r"[\x00-\x1f\x7f\\]")
_READ_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class Member:
    """A regular file of the archive: its digest and size (and leading bytes)."""

    name: str
    size: int
    sha256: str
    head: bytes  # the first few bytes (AppleDouble magic check)


@dataclass(frozen=True)
class BundleArchive:
    """What a bundle holds: its regular files by normalised name, its folders, and the
    bytes of `manifest.json`."""

    files: dict[str, Member]
    folders: frozenset[str]
    manifest: bytes


@dataclass(frozen=True)
class ArtifactRef:
    """One file the manifest declares: the field that declares it and its pins."""

    field: str  # wasm, abi, services[0].wasm, ...
    path: str  # normalised (no leading ./)
    sha256: str  # lowercase hex
    size: int


@dataclass(frozen=True)
class BundleManifest:
    """A bundle manifest of the right shape, signature not yet checked."""

    document: dict[str, Any]  # the parsed JSON object, every key kept
    package: str
    app_version: str
    signer_id: str
    artifacts: tuple[ArtifactRef, ...]


class _Capped(io.RawIOBase):
    """The decompressed tar stream, refused past `limit` bytes (a gzip bomb)."""

    def __init__(self, source: gzip.GzipFile, limit: int):
        self.source = source
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.source.read(min(len(view), self.left + 1))
        if len(data) > self.left:
            raise BundleError("archive", f"unpacks to more than {MAX_UNPACKED_BYTES:,} bytes")
        self.left -= len(data)
        view[: len(data)] = data
        return len(data)


def normalise_name(name: str) -> str:
    """`./app.wasm` and `app.wasm` are one member (as Calimero reads them); `.` and `./`
    are the root folder, written as the empty string."""
    while name.startswith("./"):
        name = name[2:]
    return "" if name in (".", "") else name.rstrip("/")


def check_member_name(name: str, where: str) -> str:
    """The normalised name, or BundleError for an absolute path, `..`, a backslash or
    a control character (names that extract outside the folder or mean two things).

    Raises:
        BundleError: a refused name.
    """
    if name.startswith("/"):
        raise BundleError(where, f"absolute path {name[:200]!r}")
    if _BAD_NAME_CHARS.search(name):
        raise BundleError(where, f"path {name[:200]!r} has a backslash or control character")
    normal = normalise_name(name)
    if ".." in normal.split("/") or len(normal) > 1024:
        raise BundleError(where, f"path {name[:200]!r} leaves the bundle (..) or is too long")
    return normal


def read_archive(data: bytes) -> BundleArchive:
    """Read a `.mpk` (gzip tar) under every limit above.

    Args:
        data: the bundle's bytes.

    Returns:
        Its files (digests, sizes), folders and the manifest's bytes.

    Raises:
        BundleError: not a gzip tar, or any limit or member rule broken.
    """
    if len(data) > MAX_MPK_BYTES:
        raise BundleError("archive", f"is {len(data):,} bytes, more than {MAX_MPK_BYTES:,}")
    if not data.startswith(b"\x1f\x8b"):
        raise BundleError("archive", "is not gzip-compressed (a .mpk is a gzip tar)")
    stream = _Capped(
        gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb"),
        MAX_UNPACKED_BYTES + MAX_TAR_OVERHEAD,
    )
    try:
        with tarfile.open(fileobj=io.BufferedReader(stream), mode="r|") as archive:
            return _read_members(archive)
    except BundleError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError, UnicodeError) as exc:
        raise BundleError("archive", f"is not a readable gzip tar ({exc})"[:300]) from None


def _read_members(archive: tarfile.TarFile) -> BundleArchive:
    files: dict[str, Member] = {}
    folders: set[str] = set()
    manifest: bytes | None = None
    total = 0
    for count, info in enumerate(archive, start=1):
        if count > MAX_ENTRIES:
            raise BundleError("archive", f"has more than {MAX_ENTRIES} entries")
        name = check_member_name(info.name, "archive")
        if info.isdir():
            if name in files:
                raise BundleError(name or ".", "is both a file and a folder")
            folders.add(name)
            continue
        _check_new_file(info, name, files, folders)
        total += info.size
        if total > MAX_UNPACKED_BYTES:
            raise BundleError("archive", f"unpacks to more than {MAX_UNPACKED_BYTES:,} bytes")
        if name == MANIFEST_NAME and info.size > MAX_MANIFEST_BYTES:
            raise BundleError(name, f"is {info.size:,} bytes, more than {MAX_MANIFEST_BYTES:,}")
        member, content = _read_member(archive, info, name)
        files[name] = member
        if name == MANIFEST_NAME:
            manifest = content
    if manifest is None:
        raise BundleError(MANIFEST_NAME, "missing from the archive")
    return BundleArchive(files, frozenset(folders), manifest)


def _check_new_file(
    info: tarfile.TarInfo, name: str, files: dict[str, Member], folders: set[str]
) -> None:
    """A regular file of a sane size, not seen before (the root folder is not a file)."""
    _check_kind(info, name or ".")
    if info.size < 0:
        raise BundleError(name or ".", "has a negative size")
    if name in files or name in folders or name == "":
        raise BundleError(name or ".", "appears more than once in the archive")


def _check_kind(info: tarfile.TarInfo, name: str) -> None:
    if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return
    if info.issym() or info.islnk():
        kind = "a symbolic link" if info.issym() else "a hard link"
    elif info.isdev():
        kind = "a device or FIFO"
    else:
        kind = f"of tar type {info.type!r}"
    raise BundleError(name, f"is {kind}; a bundle holds only regular files and folders")


def _read_member(
    archive: tarfile.TarFile, info: tarfile.TarInfo, name: str
) -> tuple[Member, bytes | None]:
    handle = archive.extractfile(info)
    assert handle is not None  # a regular file always has one
    digest = hashlib.sha256()
    kept: list[bytes] = []
    size = 0
    head = b""
    while chunk := handle.read(_READ_CHUNK):
        if not head:
            head = chunk[:8]
        digest.update(chunk)
        size += len(chunk)
        if name == MANIFEST_NAME:
            kept.append(chunk)
    if size != info.size:
        raise BundleError(name, "is cut short (truncated archive)")
    content = b"".join(kept) if name == MANIFEST_NAME else None
    return Member(name, size, digest.hexdigest(), head), content


def parse_manifest(data: bytes) -> BundleManifest:
    """Parse `manifest.json` (bounded JSON) and check its shape: what Calimero's node
    requires of it, and that every declared artifact has a path, a size and a hash.

    Args:
        data: the manifest's bytes.

    Returns:
        The manifest with its package, version, signer id and declared artifacts.

    Raises:
        BundleError: bad JSON or a missing or malformed field.
    """
    try:
        document = loads_bounded(data, max_bytes=MAX_MANIFEST_BYTES)
    except JsonRejectedError as exc:
        raise BundleError(MANIFEST_NAME, str(exc)) from None
    if not isinstance(document, dict):
        raise BundleError(MANIFEST_NAME, "must be a JSON object")
    if not isinstance(document.get("signature"), dict):
        raise BundleError("signature", "missing: the bundle is not signed (mero-sign signs it)")
    for name in ("version", "package", "appVersion", "minRuntimeVersion", "signerId"):
        if not isinstance(document.get(name), str):
            raise BundleError(name, "required (a string)")
    package = document["package"]
    if not PACKAGE_RE.fullmatch(package) or len(package) > MAX_PACKAGE_LENGTH:
        raise BundleError("package", f"{package[:200]!r} is not a package id like com.example.app")
    metadata = document.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and isinstance(metadata.get("name"), str)
    ):
        raise BundleError("metadata", "must be an object with a string name")
    artifacts = _declared_artifacts(document)
    if not any(ref.field.endswith("wasm") for ref in artifacts):
        raise BundleError("wasm", "the manifest declares no wasm artifact")
    return BundleManifest(
        document, package, document["appVersion"], document["signerId"], tuple(artifacts)
    )


def _declared_artifacts(document: dict[str, Any]) -> list[ArtifactRef]:
    found: list[ArtifactRef] = []
    for name in ("wasm", "abi"):
        if document.get(name) is not None:
            found.append(_artifact(document[name], name))
    services = document.get("services")
    if services is None:
        return found
    if not isinstance(services, list) or len(services) > MAX_ENTRIES:
        raise BundleError("services", "must be a list (of at most 1000 services)")
    for index, service in enumerate(services):
        where = f"services[{index}]"
        if not isinstance(service, dict) or not isinstance(service.get("name"), str):
            raise BundleError(where, "must be an object with a string name")
        if service.get("wasm") is None:
            raise BundleError(f"{where}.wasm", "required")
        found.append(_artifact(service["wasm"], f"{where}.wasm"))
        if service.get("abi") is not None:
            found.append(_artifact(service["abi"], f"{where}.abi"))
    return found


def _artifact(value: Any, where: str) -> ArtifactRef:
    if not isinstance(value, dict):
        raise BundleError(where, "must be an object with path, hash and size")
    path, digest, size = value.get("path"), value.get("hash"), value.get("size")
    if not isinstance(path, str) or not path:
        raise BundleError(f"{where}.path", "required (a non-empty string)")
    if not isinstance(digest, str) or not SHA256_HEX_RE.fullmatch(digest):
        shown = "null" if digest is None else repr(digest)[:80]
        raise BundleError(f"{where}.hash", f"must be a sha256 hex digest, got {shown}")
    if type(size) is not int or size < 0:
        raise BundleError(f"{where}.size", "must be a whole number of bytes")
    normal = check_member_name(path, f"{where}.path")
    if normal in ("", MANIFEST_NAME):
        raise BundleError(f"{where}.path", f"{path!r} is not an artifact file")
    return ArtifactRef(where, normal, digest.lower(), size)


def check_contents(archive: BundleArchive, manifest: BundleManifest) -> None:
    """Every declared artifact is in the archive with its size and hash, and nothing else
    is (but AppleDouble metadata beside a member: see `_is_appledouble`).

    Args:
        archive: what `read_archive` found.
        manifest: the archive's own manifest, parsed.

    Raises:
        BundleError: a missing, resized or changed artifact, or an extra file.
    """
    expected = {MANIFEST_NAME}
    for ref in manifest.artifacts:
        member = archive.files.get(ref.path)
        if member is None:
            raise BundleError(f"{ref.field}.path", f"{ref.path!r} is not in the archive")
        if member.size != ref.size:
            raise BundleError(
                f"{ref.field}.size",
                f"declares {ref.size:,} bytes; {ref.path!r} in the archive has {member.size:,}",
            )
        if member.sha256 != ref.sha256:
            raise BundleError(
                f"{ref.field}.hash", f"{ref.path!r} in the archive has sha256 {member.sha256}"
            )
        expected.add(ref.path)
    for name, member in archive.files.items():
        if name not in expected and not _is_appledouble(member, expected | archive.folders):
            raise BundleError(name, "is in the archive but not declared by the manifest")


def _is_appledouble(member: Member, known: set[str] | frozenset[str]) -> bool:
    """`dir/._name`: small, AppleDouble magic, and `dir/name` a file or folder of the
    bundle (`._.` is the root folder's). It is metadata, never read as content."""
    folder, _, base = member.name.rpartition("/")
    if not base.startswith("._") or member.size > MAX_APPLEDOUBLE_BYTES:
        return False
    if not member.head.startswith(APPLEDOUBLE_MAGIC):
        return False
    target = base[2:]
    if target == ".":
        return folder in known or folder == ""
    return (f"{folder}/{target}" if folder else target) in known
