"""The build's side of the release log: hold the source to what was logged, and log
what is new (pure: no I/O; the planner calls it per version).

Invariants, checked on every path (same output, --previous, --previous-url, --deploy,
a fresh clone):
- every logged release is still built exactly as logged (artifact file name, URL,
  sha256 and size, dependencies, provides, requires, published time), or the build
  fails naming the app, version, field and both values;
- a logged release missing from the source is an error, unless it was taken down;
- the signing key is the log's active key, or a rotation statement signed by that key
  hands over to it; the development key never signs once a real key has.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from appshelf.builder.outputs import OutputFile, OutputFiles
from appshelf.errors import LogError, Problem, SigningKeyError
from appshelf.formats.documents import FileDigest, VersionEntry
from appshelf.formats.log import (
    CHECKPOINT,
    TILE_WIDTH,
    Checkpoint,
    KeyEntry,
    LifecycleEntry,
    LoggedArtifact,
    LoggedKey,
    ReleaseEntry,
    encode_bundle,
    hash_tiles,
    log_origin,
    tiles_for,
)
from appshelf.formats.merkle import MemoryTree
from appshelf.signing.keys import RegistryKey
from appshelf.signing.note import sign_checkpoint
from appshelf.signing.releaselog import LoggedRelease, LogState, check_rotation
from appshelf.source.lifecycle import WantedStanding


@dataclass(frozen=True)
class Release:
    """What the source builds for one version, in the log's terms."""

    app: str
    version: str
    artifact: LoggedArtifact
    dependencies: dict[str, str]
    provides: list[str]
    requires: list[str]
    published: str
    publisher: str | None = None  # whose verified statement.json it carries
    statement: FileDigest | None = None
    kind: Literal["template"] | None = None  # spec section 15


def logged_key(key: RegistryKey) -> LoggedKey:
    return LoggedKey(keyid=key.keyid, public=key.public_hex, development=key.development)


def start_log(
    previous: LogState | None,
    key: RegistryKey,
    genesis: LoggedKey,
    rotations: Sequence[bytes],
    registry: str,
    logged: str,
    adopted: dict[tuple[str, str], VersionEntry] | None = None,
) -> LogState:
    """The log this build appends to: the previous one, or a new one whose genesis key is
    `genesis` (the key that signed what was published before the log, else this build's);
    then the hand-over to `key` if it is not the active key.

    Raises:
        SigningKeyError: the key is not one the log authorises (see module docstring).
    """
    state = previous.copy() if previous is not None else LogState()
    if state.size == 0:
        state.append(KeyEntry(registry=registry, logged=logged, action="genesis", key=genesis))
        adopt(state, adopted or {}, logged)
    assert state.active is not None
    if key.development and state.has_real_key:
        raise SigningKeyError(
            f"this registry's release log names key {state.active.keyid[:16]}... as its "
            "signing key, so the development key can never sign it again; " + _missing_key_hint(key)
        )
    if state.active.keyid == key.keyid:
        return state
    refused: list[str] = []
    for statement in rotations:
        try:
            rotation = check_rotation(statement, state.active, registry)
        except LogError as exc:
            if key.keyid.encode() in statement:  # meant for this key: say why it fails
                refused.append(str(exc))
            continue
        if rotation.new.keyid != key.keyid:
            continue
        try:
            state.append(
                KeyEntry(
                    registry=registry,
                    logged=logged,
                    action="rotate",
                    key=rotation.new,
                    previous=state.active.keyid,
                    statement=base64.b64encode(statement).decode(),
                )
            )
        except LogError as exc:
            raise SigningKeyError(f"key rotation refused: {exc}") from None
        return state
    if refused:
        raise SigningKeyError(
            f"a rotation statement in keys/ names key {key.keyid[:16]}... but is refused: "
            + "; ".join(refused)
        )
    raise SigningKeyError(
        f"the registry's release log names key {state.active.keyid[:16]}... as its signing "
        f"key, not {key.keyid[:16]}... ({key.origin}). Sign with that key, or hand over to "
        "this one with a rotation statement signed by both: `appshelf rotate-key --old-key-file "
        "OLD --new-key-file NEW` writes one into keys/"
    )


def _missing_key_hint(key: RegistryKey) -> str:
    if key.origin == "the built-in DEVELOPMENT key":
        return (
            "no signing key was found: set $APPSHELF_SIGNING_KEY (in CI, the repository "
            "secret), or [signing] key_file in registry.toml, or pass --key-file"
        )
    return f"the key given ({key.origin}) is the development key"


def check_release(logged: LoggedRelease, release: Release, folder: str) -> list[Problem]:
    """Every field of a logged release, compared with what the source builds now
    (`folder`: the version folder, relative to the source root)."""
    entry = logged.entry
    pairs: list[tuple[str, object, object]] = [
        ("artifact file name", entry.artifact.filename, release.artifact.filename),
        ("artifact URL", entry.artifact.url, release.artifact.url),
        ("artifact sha256", entry.artifact.sha256, release.artifact.sha256),
        ("artifact size", entry.artifact.size, release.artifact.size),
        ("dependencies", entry.dependencies, release.dependencies),
        ("provides", entry.provides, release.provides),
        ("requires", entry.requires, release.requires),
        ("published", entry.published, release.published),
        ("kind", entry.kind or "app", release.kind or "app"),
    ]
    return [
        Problem(
            f"{folder}/{release.artifact.filename}"
            if name.startswith("artifact")
            else f"{folder.rsplit('/', 1)[0]}/app.toml"
            if name == "kind"
            else f"{folder}/release.toml",
            name,
            f"{release.app} {release.version} was published (release log entry "
            f"{logged.index}) with {name} {old!r}; the source now gives {new!r}. Published "
            "versions never change: restore it, or release a new version",
        )
        for name, old, new in pairs
        if old != new
    ]


def log_release(state: LogState, release: Release, manifest: FileDigest, logged: str) -> int:
    return state.append(
        ReleaseEntry(
            registry=state.registry or "",
            logged=logged,
            app=release.app,
            version=release.version,
            artifact=release.artifact,
            manifest=manifest,
            dependencies=release.dependencies,
            provides=release.provides,
            requires=release.requires,
            published=release.published,
            publisher=release.publisher,
            statement=release.statement,
            kind=release.kind,
        )
    )


def log_standing(
    state: LogState, app: str, version: str, wanted: WantedStanding, logged: str
) -> None:
    """Append the lifecycle entries that take the release from its logged standing to the
    one the source asks for (a takedown is final: nothing follows it)."""
    release = state.releases[(app, version)]
    now = release.standing
    if now.takedown is not None:
        return
    registry = state.registry or ""

    def add(action: str, reason: str = "", replacement: str | None = None) -> None:
        state.append(
            LifecycleEntry(
                registry=registry,
                logged=logged,
                action=action,
                app=app,
                version=version,
                reason=reason,
                replacement=replacement,
            )
        )

    if wanted.yanked != now.yanked:
        if wanted.yanked is None:
            add("unyank")
        else:
            add("yank", wanted.yanked)
    if (wanted.deprecated, wanted.replacement) != (now.deprecated, now.replacement):
        if wanted.deprecated is None:
            add("undeprecate")
        else:
            add("deprecate", wanted.deprecated, wanted.replacement)
    if wanted.takedown is not None:
        add("takedown", wanted.takedown)


def adopted_release(entry: VersionEntry, app: str) -> Release:
    """A version published before the log existed, as its first log entry records it."""
    return Release(
        app=app,
        version=entry.version,
        artifact=LoggedArtifact(
            filename=entry.artifact.filename,
            url=entry.artifact.url,
            sha256=entry.artifact.sha256,
            size=entry.artifact.size,
        ),
        dependencies=dict(sorted(entry.dependencies.items())),
        provides=list(entry.provides),
        requires=list(entry.requires),
        published=entry.published,
    )


def adopt(state: LogState, versions: dict[tuple[str, str], VersionEntry], logged: str) -> None:
    """Log every version a pre-log registry published, as it published it."""
    for (app, version), entry in sorted(versions.items()):
        log_release(state, adopted_release(entry, app), entry.manifest, logged)
        if entry.yanked is not None:
            log_standing(state, app, version, WantedStanding(yanked=entry.yanked), logged)


def log_files(state: LogState, key: RegistryKey, base_url: str) -> OutputFiles:
    """The log as published: its signed checkpoint, entry bundles and hash tiles.

    An entry bundle is rendered only when the output does not hold it yet (a lazy file,
    fingerprinted by its entries' leaf hashes): a full tile never changes, so a build
    neither encodes nor holds the bundles of the log it only extends."""
    tree = MemoryTree(state.leaves)
    checkpoint = Checkpoint(log_origin(base_url), state.size, tree.root())
    files = {CHECKPOINT: OutputFile.from_bytes(sign_checkpoint(checkpoint, key))}
    for ref in tiles_for(state.size):
        if ref.level == "entries":
            start = ref.index * TILE_WIDTH
            end = start + ref.width
            leaves = hashlib.sha256(b"".join(state.leaves[start:end])).hexdigest()
            render = partial(encode_bundle, state.entries[start:end])
            files[ref.path] = OutputFile.lazy(f"log-entries:{leaves}", render)
    for ref, data in hash_tiles(tree.levels, state.size):
        files[ref.path] = OutputFile.from_bytes(data)
    return files
