"""Write one published version into a registry source tree: `apps/<key>/<version>/`.

Used by `appshelf publish --registry-checkout` (a checkout of the registry's repository,
for a pull request) and by `build --deploy` when it ingests the S3 inbox. Both write the
same folder: the publisher's `statement.json` as signed, a `release.toml` that says the
same, and the artifact (or, for an external artifact, its URL, sha256 and size).

The checkout is not trusted: every folder on the way is opened without following links
(relative to the folder above it), the app must exist, the version must not, and the
new folder appears whole or not at all (staged under a dot name the build ignores, then
renamed over the empty folder that claimed the version).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pydantic
import semver

from appshelf.errors import InputFileError, PublishError
from appshelf.formats.documents import Signed
from appshelf.formats.statement import STATEMENT_FILE, ReleaseStatement
from appshelf.inputfile import check_regular
from appshelf.source.models import (
    APP_KEY_RE,
    ARTIFACT_NAME_RE,
    RESERVED_ARTIFACT_NAMES,
    ReleaseConfig,
)

RELEASE_FILE = "release.toml"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class WrittenVersion:
    folder: Path  # <root>/apps/<key>/<version>
    files: tuple[str, ...]  # the names written in it, sorted


def check_names(body: ReleaseStatement, where: str) -> None:
    """The app key, version and artifact file name are safe as path segments.

    Raises:
        PublishError: one is not (the message names `where` and the field).
    """
    if not APP_KEY_RE.fullmatch(body.app):
        raise PublishError(f"{where}: signed.app: {body.app!r} is not an app key")
    if not semver.Version.is_valid(body.version):
        raise PublishError(f"{where}: signed.version: {body.version!r} is not SemVer 2.0.0")
    name = body.artifact.filename
    if (
        not ARTIFACT_NAME_RE.fullmatch(name)
        or name in RESERVED_ARTIFACT_NAMES
        or name in (STATEMENT_FILE, RELEASE_FILE)
    ):
        raise PublishError(
            f"{where}: signed.artifact.filename: {name!r} must be [A-Za-z0-9._+-] and not "
            "a name the registry uses itself"
        )
    url = body.artifact.url
    if url is not None and url.rsplit("/", 1)[-1] != name:
        raise PublishError(
            f"{where}: signed.artifact: filename {name!r} is not the last segment of url"
        )


def _toml_string(text: str) -> str:
    # A JSON string is a TOML basic string, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def release_toml(body: ReleaseStatement) -> bytes:
    """release.toml for the statement's version: the same artifact, dependencies,
    provides, requires, notes and publication time (the build checks they agree).

    Raises:
        PublishError: the statement holds a value release.toml does not accept.
    """
    lines = [
        f"# Written by appshelf publish from {STATEMENT_FILE}, which {body.publisher} signed.",
        "# Keep both as they are: the build refuses a release.toml that disagrees with it.",
        f"published = {_toml_string(body.published)}",
    ]
    artifact = body.artifact
    if artifact.url is None:
        lines.append(f"artifact = {_toml_string(artifact.filename)}")
    else:
        lines += [
            f"artifact_url = {_toml_string(artifact.url)}",
            f"sha256 = {_toml_string(artifact.sha256)}",
            f"size = {artifact.size}",
        ]
    if body.notes is not None:
        lines.append(f"notes = {_toml_string(body.notes)}")
    for name in ("provides", "requires"):
        values = ", ".join(_toml_string(v) for v in getattr(body, name))
        lines.append(f"{name} = [{values}]")
    lines.append("")
    lines.append("[dependencies]")
    lines += [
        f"{_toml_string(k)} = {_toml_string(v)}" for k, v in sorted(body.dependencies.items())
    ]
    text = "\n".join(lines) + "\n"
    try:
        ReleaseConfig.model_validate(tomllib.loads(text))
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "release"
        raise PublishError(f"release statement: {field}: {error['msg']}") from None
    return text.encode("utf-8")


@contextmanager
def _opened(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _open_dir(name: str, dir_fd: int | None, what: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise PublishError(f"{what}: not found") from None
    except OSError as exc:
        raise PublishError(f"{what}: not a folder, or a link ({exc.strerror})") from None


def _check_app(key_fd: int, where: str) -> None:
    try:
        info = os.stat("app.toml", dir_fd=key_fd, follow_symlinks=False)
        check_regular(info)
    except FileNotFoundError:
        raise PublishError(f"{where}/app.toml: not found; the app is unknown here") from None
    except (OSError, InputFileError) as exc:
        raise PublishError(f"{where}/app.toml: {exc}") from None


def _copy_artifact(source: Path, out_fd: int, body: ReleaseStatement) -> None:
    """Copy while hashing; the copy must be the bytes the statement signs."""
    try:
        check_regular(os.stat(source, follow_symlinks=False), single_link=False)
        in_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, InputFileError) as exc:
        raise PublishError(f"{source}: {exc}") from None
    digest, size, want = hashlib.sha256(), 0, body.artifact.size
    with _opened(in_fd):
        if not stat.S_ISREG(os.fstat(in_fd).st_mode):
            raise PublishError(f"{source}: not a regular file")
        while chunk := os.read(in_fd, min(1 << 20, want + 1 - size)):
            size += len(chunk)
            digest.update(chunk)
            os.write(out_fd, chunk)
            if size > want:
                break
    if size != want or digest.hexdigest() != body.artifact.sha256:
        raise PublishError(
            f"{source}: is not the artifact the statement signs (sha256 "
            f"{body.artifact.sha256}, {want} bytes)"
        )


def _write_file(
    folder_fd: int, name: str, data: bytes | None, artifact: Path | None, body: ReleaseStatement
) -> None:
    fd = os.open(name, _NEW_FILE, 0o644, dir_fd=folder_fd)
    with _opened(fd):
        if artifact is not None:
            _copy_artifact(artifact, fd, body)
        else:
            assert data is not None
            os.write(fd, data)
        os.fsync(fd)


def _files_for(
    envelope: Signed[ReleaseStatement], statement: bytes, artifact: Path | None, where: str
) -> dict[str, tuple[bytes | None, Path | None]]:
    body = envelope.signed
    if body.artifact.url is None and artifact is None:
        raise PublishError(
            f"{where}: the statement has no artifact url, so give the artifact file "
            f"{body.artifact.filename} (--artifact)"
        )
    if body.artifact.url is not None and artifact is not None:
        raise PublishError(
            f"{where}: the artifact is external ({body.artifact.url}); give no artifact file"
        )
    files: dict[str, tuple[bytes | None, Path | None]] = {
        STATEMENT_FILE: (statement, None),
        RELEASE_FILE: (release_toml(body), None),
    }
    if artifact is not None:
        files[body.artifact.filename] = (None, artifact)
    return files


def write_version(
    root: Path,
    statement: bytes,
    envelope: Signed[ReleaseStatement],
    artifact: Path | None,
    where: str = STATEMENT_FILE,
) -> WrittenVersion:
    """Write `apps/<app>/<version>/` for a parsed statement into the source tree `root`.

    Args:
        root: the registry source tree (a checkout of its repository).
        statement: the statement's bytes, written as they are.
        envelope: those bytes, parsed (`read_statement`).
        artifact: the artifact file; None when the statement names an external url.
        where: how to name the statement in messages.

    Raises:
        PublishError: the app is unknown, the version exists, a folder on the way is a
            link or not a folder, or the artifact is not the one signed; nothing is left.
    """
    body = envelope.signed
    check_names(body, where)
    files = _files_for(envelope, statement, artifact, where)
    rel = f"apps/{body.app}"
    with (
        _opened(_open_dir(str(root), None, str(root))) as root_fd,
        _opened(_open_dir("apps", root_fd, f"{root}/apps")) as apps_fd,
    ):
        try:
            key_fd = os.open(body.app, _DIR_FLAGS, dir_fd=apps_fd)
        except OSError:
            raise PublishError(
                f"{root}/{rel}: no such app folder (or a link); the app is unknown here: "
                "the registry adds an app (apps/<key>/app.toml with its owners) first"
            ) from None
        with _opened(key_fd):
            _check_app(key_fd, f"{root}/{rel}")
            _place(key_fd, body.version, files, body, f"{root}/{rel}")
    return WrittenVersion(root / rel / body.version, tuple(sorted(files)))


def _place(
    key_fd: int,
    version: str,
    files: dict[str, tuple[bytes | None, Path | None]],
    body: ReleaseStatement,
    where: str,
) -> None:
    try:
        os.mkdir(version, 0o755, dir_fd=key_fd)  # the claim: fails if the version exists
    except FileExistsError:
        raise PublishError(
            f"{where}/{version}: already exists; a published version never changes "
            "(release a new version)"
        ) from None
    staging = f".appshelf-publish-{version}-{os.getpid()}"
    try:
        os.mkdir(staging, 0o755, dir_fd=key_fd)
        with _opened(os.open(staging, _DIR_FLAGS, dir_fd=key_fd)) as staging_fd:
            for name, (data, path) in sorted(files.items()):
                _write_file(staging_fd, name, data, path, body)
            os.fsync(staging_fd)
        os.rename(staging, version, src_dir_fd=key_fd, dst_dir_fd=key_fd)
        os.fsync(key_fd)
    except BaseException:
        _remove_folder(key_fd, staging, list(files))
        with suppress(OSError):
            os.rmdir(version, dir_fd=key_fd)
        raise


def _remove_folder(parent_fd: int, name: str, files: list[str]) -> None:
    try:
        folder_fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return
    with _opened(folder_fd):
        for file in files:
            with suppress(FileNotFoundError):
                os.unlink(file, dir_fd=folder_fd)
    with suppress(OSError):
        os.rmdir(name, dir_fd=parent_fd)


def remove_version(written: WrittenVersion) -> None:
    """Undo `write_version`: remove exactly the files it wrote, then the folder (a build
    or deploy that used it failed, so the version is not published)."""
    parent = written.folder.parent
    try:
        parent_fd = os.open(parent, _DIR_FLAGS)
    except OSError:
        return
    with _opened(parent_fd):
        _remove_folder(parent_fd, written.folder.name, list(written.files))
