"""The planned content of an output folder: what each relative path will hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appshelf.formats.canonical import sha256_hex
from appshelf.formats.layout import app_dir, url_for, version_dir  # re-exported


@dataclass(frozen=True, slots=True)
class OutputFile:
    """Bytes produced by the build, a source file copied as is (artifacts), or content
    rendered only when needed (`lazy`, for generators such as the HTML site)."""

    sha256: str
    size: int
    data: bytes | None = None
    source: Path | None = None
    fingerprint: str | None = None  # lazy files: digest of every input of the bytes
    render: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> OutputFile:
        return cls(sha256=sha256_hex(data), size=len(data), data=data)

    @classmethod
    def copy_of(cls, source: Path, sha256: str, size: int) -> OutputFile:
        return cls(sha256=sha256, size=size, source=source)

    @classmethod
    def lazy(cls, fingerprint: str, render: Callable[[], bytes]) -> OutputFile:
        """A file whose bytes are rendered only if the output does not already hold what
        the last build rendered from the same `fingerprint` (the writer remembers it in
        the build cache): the file is missing, was changed on disk, or its inputs
        changed. The fingerprint must cover everything the bytes depend on (the inputs'
        digests and the template's version); `render` must be deterministic. This keeps
        a no-op rebuild from rendering thousands of pages. Not for files the snapshot
        pins: their digests are needed before writing."""
        return cls(sha256="", size=-1, fingerprint=fingerprint, render=render)

    @property
    def is_lazy(self) -> bool:
        return self.data is None and self.source is None and self.render is not None

    def materialize(self) -> OutputFile:
        """The rendered file (itself when it is not lazy)."""
        if not self.is_lazy:
            return self
        assert self.render is not None
        data = self.render()
        return OutputFile(sha256_hex(data), len(data), data=data, fingerprint=self.fingerprint)

    def without_bytes(self) -> OutputFile:
        """Digest, size and fingerprint only: what is left to know once it is written (a
        copy's source path too: a build held one per artifact, 0.3 KB, until its end)."""
        if self.data is None and self.render is None and self.source is None:
            return self
        return OutputFile(self.sha256, self.size, fingerprint=self.fingerprint)

    @property
    def cache_token(self) -> str:
        """What the build cache records for this file: its fingerprint when it has one
        (so the next build can match it without rendering), else its digest."""
        return f"fp:{self.fingerprint}" if self.fingerprint is not None else self.sha256


OutputFiles = dict[str, OutputFile]  # posix path relative to the output root -> content
MAX_PAGE_BYTES = 64 << 20  # a rendered page read back from the output (never larger)

__all__ = ["MAX_PAGE_BYTES", "OutputFile", "OutputFiles", "app_dir", "url_for", "version_dir"]
