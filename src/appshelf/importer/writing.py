"""Writing what import and sync produce, inside the source tree and nowhere else.

Names come from a hostile registry, so every path is built from names that already
matched a whole-value pattern (app key, SemVer version, icon name) and is checked to
stay inside its folder. Files are created with O_EXCL|O_NOFOLLOW (never through a
link, never over a file), first in a staging folder inside the tree, which is renamed
into place only once everything is written and checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from appshelf.errors import FlowsImportError
from appshelf.source.models import AppConfig

_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}")


def toml_string(value: str) -> str:
    """A TOML basic string. JSON's escapes are TOML's for every character the source
    models let through (they refuse DEL and the other controls TOML cannot hold raw)."""
    return json.dumps(value, ensure_ascii=False)


def render_registry_toml(name: str, base_url: str, allow_internal: bool, source: str) -> str:
    lines = [
        f"# Imported by `appshelf import` from {source}.",
        "[registry]",
        f"name = {toml_string(name)}",
        f"base_url = {toml_string(base_url)}",
    ]
    if allow_internal:
        lines.append("allow_internal_artifact_hosts = true")
    return "\n".join(lines) + "\n"


def render_app_toml(config: AppConfig) -> str:
    """app.toml with the fields a Flows entry carries (plus `upstream` when federated)."""
    lines = [
        f"name = {toml_string(config.name)}",
        f"description = {toml_string(config.description)}",
    ]
    for field in ("color", "icon", "upstream"):
        value = getattr(config, field)
        if value is not None:
            lines.append(f"{field} = {toml_string(value)}")
    return "\n".join(lines) + "\n"


def render_release_toml(url: str, sha256: str, size: int) -> str:
    return f'artifact_url = {toml_string(url)}\nsha256 = "{sha256}"\nsize = {size}\n'


def safe_join(folder: Path, *parts: str) -> Path:
    """`folder/part/...` for parts that are plain names; anything else is a bug upstream
    of here (the names were checked), so it stops the import rather than escape."""
    for part in parts:
        if not _SAFE_PART.fullmatch(part) or part in (".", ".."):
            raise FlowsImportError([f"refusing to write a file named {part!r}"])
    return folder.joinpath(*parts)


def write_new(path: Path, data: bytes) -> None:
    """Create `path` (never through a link, never over an existing file) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def replace_file(path: Path, data: bytes) -> None:
    """Replace `path` atomically (a temporary file beside it, then rename)."""
    temp = path.with_name(f".{path.name}.appshelf-{os.getpid()}")
    write_new(temp, data)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def make_staging(tree: Path, kind: str) -> Path:
    """A fresh staging folder inside `tree` (a dot name: the source reader skips it)."""
    staging = tree / f".appshelf-{kind}-{os.getpid()}"
    if staging.is_symlink() or staging.exists():
        remove_staging(staging)
    os.mkdir(staging, 0o755)
    return staging


def remove_staging(staging: Path) -> None:
    if staging.is_symlink():
        staging.unlink()
    elif staging.exists():
        shutil.rmtree(staging)
