"""The appr/CNR mirror's static layout and documents (pure: no I/O; docs/spec.md
section 14).

The stock appr 0.7.4 client (`appr.client.ApprClient`) reads these paths under
`<base_url>cnr/`; a path that the API serves both as a document and as a folder of
further documents is written as `<path>/index.html` and reached through the host's
folder redirect (`<path>` -> `<path>/`), as GitHub Pages and nginx do.

A package's blob is what appr expects: a gzip'd tar archive, here holding exactly one
member, the appshelf artifact, so that `appr pull` unpacks the artifact byte for byte.
It is written deterministically (`package_blob`), so rebuilds give identical files.
"""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import tarfile
import zlib
from typing import Any, Final, Literal

from appshelf.formats.documents import SPEC_VERSION, FileDigest, _Document

ROOT: Final = "cnr"
INDEX: Final = "index.html"
PINS: Final = f"{ROOT}/files.json"  # pinned by snapshot.json; pins every other mirror file
FILES_TYPE: Final = "appshelf.mirror-files"
APPR_API: Final = "0.7.4"  # the appr release whose client this mirror serves
MEDIA_TYPE: Final = "appshelf"  # appr's short media-type name for an appshelf artifact
ANY_MEDIA_TYPE: Final = "-"  # what `appr pull` asks for unless told a media type
DEFAULT_RELEASE: Final = "default"


def manifest_media_type(name: str = MEDIA_TYPE) -> str:
    return f"application/vnd.appr.package-manifest.{name}.v0.json"


def content_media_type(name: str = MEDIA_TYPE) -> str:
    return f"application/vnd.appr.package.{name}.v0.tar+gzip"


class MirrorFiles(_Document):
    """`cnr/files.json`: every other file of the mirror, pinned, so that the signed
    snapshot (which pins this file) covers the whole mirror."""

    type: Literal["appshelf.mirror-files"] = FILES_TYPE
    spec_version: Literal["1"] = SPEC_VERSION
    registry: str
    files: dict[str, FileDigest]


def packages_path(*parts: str) -> str:
    return "/".join((ROOT, "api", "v1", "packages", *parts))


def document_path(path: str) -> str:
    """Where a path that is also a folder keeps its document."""
    return f"{path}/{INDEX}"


def _stored_gzip(data: bytes) -> bytes:
    """gzip (RFC 1952) of `data` in stored deflate blocks (RFC 1951 BTYPE 00): no
    compression, so the bytes depend on nothing but `data` (not on a zlib version)."""
    out = bytearray(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")  # mtime 0, OS unknown
    view = memoryview(data)
    offset = 0
    while True:
        chunk = view[offset : offset + 0xFFFF]
        offset += len(chunk)
        final = offset >= len(data)
        out += struct.pack("<BHH", 1 if final else 0, len(chunk), len(chunk) ^ 0xFFFF)
        out += chunk
        if final:
            break
    out += struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
    return bytes(out)


def package_tar(filename: str, data: bytes, mtime: int) -> bytes:
    """A tar archive of one regular file: its pax/ustar header (mode 0644, uid and gid
    0, empty user and group names), the data padded to 512 bytes, two zero blocks."""
    info = tarfile.TarInfo(filename)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    header = info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")
    padding = b"\0" * (-len(data) % tarfile.BLOCKSIZE)
    return header + data + padding + b"\0" * (2 * tarfile.BLOCKSIZE)


def package_blob(filename: str, data: bytes, mtime: int) -> tuple[bytes, str]:
    """The appr blob of an artifact and its appr digest (SHA-256 of the tar, before
    gzip, as appr computes it)."""
    tar = package_tar(filename, data, mtime)
    return _stored_gzip(tar), hashlib.sha256(tar).hexdigest()


def unpack_blob(blob: bytes) -> dict[str, bytes]:
    """The members of a blob (for checks and tests; appr clients use their own)."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        found: dict[str, bytes] = {}
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            if handle is not None:
                found[member.name] = handle.read()
        return found


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pull_document(package: str, release: str, blob: bytes, filename: str) -> dict[str, Any]:
    """`…/<release>/<media type>/pull`: what appr's `pull_json` reads."""
    return {
        "blob": b64(blob),
        "filename": filename,
        "media_type": MEDIA_TYPE,
        "package": package,
        "release": release,
    }
