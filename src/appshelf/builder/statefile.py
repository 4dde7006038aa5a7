"""The build state published with the registry (`log/state.json`, formats/buildstate.py):
written by every build whose source is a git work tree, read back by a build that starts
from a published registry with no local cache (`--previous-url`, `--deploy`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from appshelf.builder.cache import BuildCache
from appshelf.formats.buildstate import BuildState, encode_state
from appshelf.signing.releaselog import LogState
from appshelf.source.gitstate import GitApps


def state_file(base_url: str, app_keys: Iterable[str], log: LogState, git: GitApps) -> bytes:
    """Per app of the registry that git vouches for, its tree id; per logged local
    artifact whose source file git vouches for, its blob id -> the logged digest and size.

    From the log, not from this build's hashes: a published artifact cannot change (the
    build refuses it), and so a build that reused an app writes the same file as one that
    read it."""
    keys = set(app_keys)
    apps = {key: tree for key, tree in git.trees.items() if key in keys}
    artifacts: dict[str, tuple[str, int]] = {}
    for release in log.releases.values():
        ref = release.artifact
        if ref.url.startswith(base_url):
            oid = git.blobs.get(unquote(ref.url[len(base_url) :]))
            if oid is not None:
                artifacts[oid] = (ref.sha256, ref.size)
    return encode_state(base_url, apps, artifacts)


@dataclass(frozen=True)
class PublishedBlobs:
    """A `BlobMemory` (filehash.py): the build cache's rows, and those of the published
    build state (verified with the snapshot that pins it); what is learned goes to the
    cache."""

    cache: BuildCache
    state: BuildState

    def load_blobs(self) -> Mapping[str, tuple[str, int]]:
        published = {oid: (d.sha256, d.size) for oid, d in self.state.artifacts.items()}
        return {**published, **self.cache.load_blobs()}

    def store_blobs(self, rows: Iterable[tuple[str, str, int]]) -> None:
        self.cache.store_blobs(rows)

    def forget(self, table: str, names: Iterable[str] | None = None) -> None:
        self.cache.forget(table, names)
