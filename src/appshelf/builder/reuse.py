"""Incremental reuse as one plug-in: what earlier builds left that may save work.

The build hands one `Reuse` value to its stages (as dumb-pypi hands its one
`previous_packages`), and asks it only these things:

- the reader: which app folders are unchanged, and which config files and folder
  listings are as read before (`read_tree`);
- the hasher: which artifacts' digests are known, by blob id or stat key (`hash`);
- the writer: which output files are still as written (`write`), after which it
  remembers this build for the next one.

`Reuse.none()` knows nothing, so a build with it is a cold build. Whatever a `Reuse`
knows, the output is the same bytes (tests/test_memo.py, tests/test_gitstate.py): a
record can only save time. Everything it keeps is in the build cache beside the
output (builder/cache.py) or, for digests by blob id, in the published build state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appshelf.builder.cache import BuildCache
from appshelf.builder.memo import AppMemo, MemoizableGenerator
from appshelf.builder.outputs import OutputFiles
from appshelf.builder.plan import RegistryPlan, ReusedApp
from appshelf.builder.statefile import PublishedBlobs
from appshelf.builder.writer import Spool, WriteStats, write_tree
from appshelf.errors import Problem, SourceTreeError
from appshelf.filehash import BlobIds, FileHash, HashStats, hash_files
from appshelf.formats.buildstate import BuildState
from appshelf.source.gitstate import GitApps
from appshelf.source.models import RegistryConfig
from appshelf.source.tree import SourceTree, load_source_tree, read_registry_config

if TYPE_CHECKING:
    from appshelf.builder.pipeline import BuildOptions

log = logging.getLogger("appshelf.build")


@dataclass
class Reuse:
    """What earlier builds left, and what this one learns for the next.

    Attributes:
        cache: The build cache beside the output (`BuildCache(None)` keeps nothing).
        apps: Unchanged apps (builder/memo.py); None where whole apps are never reused
            (another published state, a mirror built from every app's plan).
        git: What git vouches for (source/gitstate.py), if the source is a work tree.
    """

    cache: BuildCache
    apps: AppMemo | None = None
    git: GitApps | None = None

    @classmethod
    def none(cls) -> Reuse:
        """A reuse that knows nothing: a cold build."""
        return cls(BuildCache(None))

    @classmethod
    def for_build(
        cls, source: Path, output: Path, options: BuildOptions, git: GitApps | None
    ) -> Reuse:
        """The reuse an output folder's cache allows for these options.

        Args:
            source: the source tree.
            output: the output folder, beside which the cache is kept.
            options: the build's options (`cache=False` keeps nothing).
            git: what git vouches for in `source`, if anything.
        """
        if not options.cache:  # the published build state may still vouch for blob ids
            return cls(BuildCache(None), git=git)
        cache = BuildCache.for_output(output)
        return cls(cache, _app_memo(source, output, options, cache, git), git)

    @property
    def reused(self) -> dict[str, ReusedApp]:
        """The unchanged apps found by `read_tree`, by key."""
        if self.apps is None:
            return {}
        return {key: app for key, (_, app) in self.apps.reused.items()}

    @property
    def problems(self) -> list[str]:
        """Cache trouble worth a warning (it never fails a build)."""
        return self.cache.problems

    def read_tree(self, source: Path, base_url: str | None, again: bool = False) -> SourceTree:
        """The source tree, unchanged apps taken as they were; `again` reads every app
        (the signing key changed: every manifest is signed again).

        Raises:
            SourceTreeError: the source has problems (all of them).
        """
        if again and self.apps is not None:
            log.debug("the signing key changed: no app is reused")
            self.apps.forget_all()
        tree = load_source_tree(source, base_url=base_url, memo=self.cache, reuse=self.apps)
        self.cache.flush(prune=True, keep=_in_apps(tree))
        if self.apps is not None:  # apps that are gone: their rows, unless a full read pruned them
            gone = self.apps.gone_apps(tree)
            self.cache.forget_folders("sources", _app_folders("", gone))
            self.cache.forget_folders("artifacts", _app_folders(f"{tree.root}/", gone))
        return tree

    def needs_reread(self, keyid: str) -> bool:
        """Whether an app taken as unchanged was signed by a key other than `keyid`."""
        return self.apps is not None and any(
            record.key_id != keyid for record, _ in self.apps.reused.values()
        )

    def hash(
        self, tree: SourceTree, stats: HashStats, state: BuildState | None
    ) -> dict[tuple[str, str], FileHash]:
        """The digest of every local artifact of the apps read, by (app, version): by blob
        id (what git vouches for) from the cache or the published build `state`, by stat
        key from the cache, else read.

        Raises:
            SourceTreeError: an artifact could not be read.
        """
        local = {
            (v.app_key, v.version): v.artifact.path
            for app in tree.apps
            for v in app.versions
            if v.artifact.path is not None
        }
        if not local and tree.unchanged:
            return {}  # nothing to hash, and no complete list of artifacts to prune against
        try:
            blobs = self._blob_ids(tree, local.values(), state)
            by_path = hash_files(
                local.values(),
                cache=self.cache,
                stats=stats,
                prune=True,
                keep=_app_folders(f"{tree.root}/", (app.key for app in tree.unchanged)),
                blobs=blobs,
            )
        except OSError as exc:
            where = Path(exc.filename).relative_to(tree.root).as_posix() if exc.filename else "?"
            raise SourceTreeError([Problem(where, "", f"cannot read ({exc.strerror})")]) from None
        return {ident: by_path[path] for ident, path in local.items()}

    def _blob_ids(
        self, tree: SourceTree, paths: Iterable[Path], state: BuildState | None
    ) -> BlobIds | None:
        """The blob ids of the artifacts git vouches for, with every blob id of HEAD's
        apps/ kept in the cache (an unchanged app's artifacts are not hashed, so not
        listed)."""
        git = self.git
        if git is None or (self.cache.path is None and state is None):
            return None
        wanted = {path.relative_to(tree.root).as_posix(): path for path in paths}
        ids = {wanted[rel]: oid for rel, oid in git.blobs.items() if rel in wanted}
        memory = PublishedBlobs(self.cache, state) if state is not None else self.cache
        return BlobIds(memory, ids, frozenset(git.known))

    def spool(self, output: Path, known: Mapping[str, str]) -> Spool:
        """The writer, opened on `output` to take files as they are planned: it skips
        the rows of reused apps (their files are verified apart).

        Args:
            output: the output folder.
            known: output paths of earlier artifacts -> sha256, not read again.

        Raises:
            OutputError: the output or a leftover beside it is not what appshelf wrote.
        """
        return Spool(output, self.cache, known, set(self.reused))

    def write(
        self, plan: RegistryPlan, spool: Spool, keep: Callable[[str], bool], keyid: str
    ) -> WriteStats:
        """Write `plan` through `spool` (builder/writer.py), leaving the files of reused
        apps and those still as written; then remember what was written.

        Args:
            plan: every planned file (and the paths of reused apps' files).
            spool: the writer, opened on the output by `spool`.
            keep: which no-longer-planned files stay (content-addressed copies).
            keyid: the signing key, recorded with each app.
        """
        stats = write_tree(
            plan.files, spool.target, cache=self.cache, verified=plan.reused, keep=keep, spool=spool
        )
        if self.apps is not None:
            self.apps.store(plan.tree.config, plan, keyid, stats.stat_lines)
        return stats

    def close(self) -> None:
        """Commit and close the cache."""
        self.cache.close()


def _app_folders(base: str, keys: Iterable[str]) -> list[str]:
    """`<base>apps/<key>/` of each app: the folder of its cache rows (source rows are
    named relative to the source root, base "", artifact rows absolutely)."""
    return [f"{base}apps/{key}/" for key in keys]


def _in_apps(tree: SourceTree) -> Callable[[str], bool]:
    """Whether a source row (named relative to the source root) lies in an unchanged app's
    folder, which was not read, so its rows must not be pruned as stale."""
    unchanged = {app.key for app in tree.unchanged}
    prefix = "apps/"

    def keep(name: str) -> bool:
        return name.startswith(prefix) and name[len(prefix) :].split("/", 1)[0] in unchanged

    return keep


def _app_memo(
    source: Path, output: Path, options: BuildOptions, cache: BuildCache, git: GitApps | None
) -> AppMemo | None:
    """Reuse unchanged apps only when the output is also the published state read (no
    --previous) and every generator can say what its pages depend on."""
    if cache.path is None or options.previous is not None or options.previous_source is not None:
        return None
    if _mirrors_on(source):
        return None  # the appr and Calimero mirrors are built from every app's plan
    generators = [g for g in options.generators if isinstance(g, MemoizableGenerator)]
    if len(generators) != len(options.generators):
        return None
    salts = [*generators, _ModeSalt(options.production and not options.preview)]
    return AppMemo(cache, output.absolute(), source.resolve(), salts, git=git)


@dataclass(frozen=True)
class _ModeSalt:
    """Build options that decide whether a reused app would still be accepted: a bundle
    checked in a non-production build is checked again by a production one (spec 12.4)."""

    production: bool

    def __call__(self, plan: RegistryPlan) -> OutputFiles:
        return {}

    def memo_salt(self, root: Path, config: RegistryConfig) -> str:
        return f"production={self.production}"


def _mirrors_on(source: Path) -> bool:
    """Whether registry.toml turns on a mirror made from every app's plan: appr's, or
    Calimero's, which needs the bundle manifests a reused app does not carry (spec 12.6).
    A broken registry.toml is reported by the build."""
    try:
        mirrors = read_registry_config(source).mirrors
    except SourceTreeError:
        return False
    return mirrors.appr or mirrors.calimero
