"""The planned content of an output folder: what each relative path will hold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from appshelf.formats.canonical import sha256_hex


@dataclass(frozen=True)
class OutputFile:
    """Either bytes produced by the build, or a source file copied as is (artifacts)."""

    sha256: str
    size: int
    data: bytes | None = None
    source: Path | None = None

    @classmethod
    def from_bytes(cls, data: bytes) -> OutputFile:
        return cls(sha256=sha256_hex(data), size=len(data), data=data)

    @classmethod
    def copy_of(cls, source: Path, sha256: str, size: int) -> OutputFile:
        return cls(sha256=sha256, size=size, source=source)


OutputFiles = dict[str, OutputFile]  # posix path relative to the output root -> content


def url_for(base_url: str, relpath: str) -> str:
    """Absolute URL of an output path; each segment percent-encoded (`+` in versions)."""
    return base_url + "/".join(quote(part, safe="") for part in relpath.split("/"))


def app_dir(key: str) -> str:
    return f"apps/{key}"


def version_dir(key: str, version: str) -> str:
    return f"apps/{key}/{version}"
