"""`apps/<key>/lifecycle.toml`: what happened to an app's published versions.

Written only by `appshelf yank`, `unyank`, `deprecate`, `undeprecate` and `takedown`
(never by hand, though it is plain TOML), and committed with the source so that every
build, also a fresh CI clone, carries it. The build turns each change of standing into
a release-log entry. It lives beside app.toml rather than in release.toml because
appshelf owns it whole and rewrites it, while release.toml is the author's file (with
comments appshelf would lose) and, once logged, never changes.

```toml
[versions."1.1.0"]
yanked = "corrupts values larger than 1 MiB; use 1.1.1"
deprecated = "the 1.x line ends here"
replacement = "2.0.0"
takedown = "removed at the author's request"
```

`yanked = false` un-yanks a version that release.toml's legacy `yanked` marks.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from appshelf.errors import Problem, SourceTreeError

LIFECYCLE_FILE = "lifecycle.toml"
MAX_LIFECYCLE_BYTES = 1 << 20
_REASON_MAX = 500
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")


def _reason(value: object) -> object:
    if isinstance(value, str):
        if _UNSAFE.search(value):
            raise ValueError("must not contain control or bidirectional characters")
        if not value.strip():
            raise ValueError("must say why (an empty reason helps nobody)")
    return value


class VersionLifecycle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    yanked: str | bool | None = Field(default=None)
    deprecated: str | None = Field(default=None, max_length=_REASON_MAX)
    replacement: str | None = None
    takedown: str | None = Field(default=None, max_length=_REASON_MAX)

    @field_validator("yanked", "deprecated", "takedown")
    @classmethod
    def _check_reason(cls, value: object) -> object:
        if value is True:
            raise ValueError('give the reason as text, e.g. yanked = "breaks on Windows"')
        if isinstance(value, str) and len(value) > _REASON_MAX:
            raise ValueError(f"at most {_REASON_MAX} characters")
        return _reason(value)


class LifecycleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    versions: dict[str, VersionLifecycle] = Field(default_factory=dict)


@dataclass(frozen=True)
class WantedStanding:
    """A version's standing as the source asks for it."""

    yanked: str | None = None
    deprecated: str | None = None
    replacement: str | None = None
    takedown: str | None = None


def read_lifecycle(app_folder: Path, root: Path) -> LifecycleFile:
    """The app's lifecycle.toml (empty when there is none).

    Raises:
        SourceTreeError: not a regular file, too large, not TOML, or invalid fields.
    """
    path = app_folder / LIFECYCLE_FILE
    where = path.relative_to(root).as_posix() if root in path.parents else str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return LifecycleFile()
    except OSError as exc:
        raise SourceTreeError([Problem(where, "", f"cannot read ({exc.strerror})")]) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
            raise SourceTreeError([Problem(where, "", "must be a regular file (no links)")])
        raw = handle.read(MAX_LIFECYCLE_BYTES + 1)
    if len(raw) > MAX_LIFECYCLE_BYTES:
        raise SourceTreeError([Problem(where, "", f"larger than {MAX_LIFECYCLE_BYTES} bytes")])
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        return LifecycleFile.model_validate(data)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise SourceTreeError([Problem(where, "", f"invalid TOML ({exc})")]) from None
    except pydantic.ValidationError as exc:
        problems = [
            Problem(
                where, ".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, ")
            )
            for e in exc.errors()
        ]
        raise SourceTreeError(problems) from None


def wanted_standing(
    lifecycle: LifecycleFile, version: str, legacy_yank: str | None
) -> WantedStanding:
    entry = lifecycle.versions.get(version)
    if entry is None:
        return WantedStanding(yanked=legacy_yank)
    yanked: str | None
    if entry.yanked is None:
        yanked = legacy_yank
    elif entry.yanked is False:
        yanked = None
    else:
        yanked = str(entry.yanked)
    return WantedStanding(yanked, entry.deprecated, entry.replacement, entry.takedown)


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, for the characters allowed here)."""
    import json

    return json.dumps(value, ensure_ascii=False)


def render_lifecycle(lifecycle: LifecycleFile) -> str:
    lines = [
        "# Written by appshelf (yank, unyank, deprecate, undeprecate, takedown). Commit it:",
        "# every build turns a change here into an entry of the registry's release log.",
    ]
    for version in sorted(lifecycle.versions):
        entry = lifecycle.versions[version]
        fields = entry.model_dump(exclude_none=True)
        if not fields:
            continue
        lines += ["", f"[versions.{_toml_string(version)}]"]
        for name in ("yanked", "deprecated", "replacement", "takedown"):
            if name in fields:
                value = fields[name]
                text = "false" if value is False else _toml_string(str(value))
                lines.append(f"{name} = {text}")
    return "\n".join(lines) + "\n"


def write_lifecycle(app_folder: Path, lifecycle: LifecycleFile) -> Path:
    """Replace lifecycle.toml atomically (temp file, fsync, rename)."""
    path = app_folder / LIFECYCLE_FILE
    temp = app_folder / f".{LIFECYCLE_FILE}.tmp-{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(render_lifecycle(lifecycle))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


ACTIONS = ("yank", "unyank", "deprecate", "undeprecate", "takedown")


def record_standing(
    root: Path,
    app: str,
    version: str,
    action: str,
    reason: str | None = None,
    replacement: str | None = None,
) -> Path:
    """Change one version's standing in apps/<app>/lifecycle.toml; the next build logs it.

    Raises:
        SourceTreeError: no such app or version in the source, a missing reason, or a
            takedown undone (takedowns are final).
    """
    folder = root / "apps" / app
    where = f"apps/{app}"
    known = re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", app) and (folder / "app.toml").is_file()
    if not known:
        raise SourceTreeError([Problem(where, "", f"no app {app!r} in {root}")])
    if action != "takedown" and not (folder / version).is_dir():
        raise SourceTreeError([Problem(f"{where}/{version}", "", "no such version folder")])
    current = read_lifecycle(folder, root)
    entry = current.versions.get(version, VersionLifecycle())
    fields = entry.model_dump()
    if action in ("yank", "deprecate", "takedown") and not (reason or "").strip():
        raise SourceTreeError([Problem(f"{where}/{LIFECYCLE_FILE}", version, "give --reason")])
    if action == "yank":
        fields["yanked"] = reason
    elif action == "unyank":
        fields["yanked"] = False
    elif action == "deprecate":
        fields["deprecated"], fields["replacement"] = reason, replacement
    elif action == "undeprecate":
        fields["deprecated"] = fields["replacement"] = None
    else:
        fields["takedown"] = reason
    try:
        versions = dict(current.versions)
        versions[version] = VersionLifecycle.model_validate(fields)
        updated = LifecycleFile(versions=versions)
    except pydantic.ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise SourceTreeError([Problem(f"{where}/{LIFECYCLE_FILE}", version, message)]) from None
    return write_lifecycle(folder, updated)
