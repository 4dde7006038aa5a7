"""Source-tree edits the deploy tests make: new versions, changed artifacts."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def add_version(source: Path, app: str, version: str, payload: bytes | None = None) -> Path:
    """A new version of `app` with its own artifact bytes."""
    folder = source / "apps" / app / version
    folder.mkdir(parents=True)
    data = payload if payload is not None else hashlib.sha256(f"{app}{version}".encode()).digest()
    (folder / f"{app}-{version}.tar.gz").write_bytes(data * 8)
    (folder / "release.toml").write_text(
        f'published = 2026-01-10T00:00:00Z\nnotes = "{app} {version}"\n'
    )
    return folder


def replace_artifact(source: Path, app: str, version: str, data: bytes) -> None:
    folder = source / "apps" / app / version
    (artifact,) = [p for p in folder.iterdir() if p.name != "release.toml"]
    artifact.write_bytes(data)


def copy_site(site: Path, target: Path) -> Path:
    shutil.copytree(site, target)
    return target
