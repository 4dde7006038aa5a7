"""`build_registry`: the whole build, readable top to bottom.

Gather everything first (source, earlier output, key, hashes), plan every file in
memory, and only then write, atomically. Nothing is printed here: the report is
returned for the CLI to show.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

from pydantic import BaseModel

from appshelf.builder.cache import BuildCache
from appshelf.builder.consistent import add_pinned_copies, keep_rule
from appshelf.builder.housekeeping import check_output_entry, output_lock
from appshelf.builder.logcache import load_seen, store_seen
from appshelf.builder.logplan import log_files, logged_key, start_log
from appshelf.builder.memo import AppMemo, MemoizableGenerator
from appshelf.builder.outputs import OutputFile, OutputFiles
from appshelf.builder.plan import RegistryPlan, plan_registry, plan_snapshot
from appshelf.builder.previous import (
    FolderSource,
    PreviousOutput,
    PublishedSource,
    Trust,
    looks_like_output,
    read_previous,
)
from appshelf.builder.statefile import PublishedBlobs, state_file
from appshelf.builder.tufprevious import TufPrevious, read_bin_targets, read_tuf_previous
from appshelf.builder.tufrepo import TufSettings, plan_tuf, site_targets
from appshelf.builder.writer import WriteStats, recover_interrupted, write_tree
from appshelf.errors import BundleError, OutputError, Problem, SigningKeyError, SourceTreeError
from appshelf.filehash import BlobIds, FileHash, HashStats, hash_files
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.buildstate import STATE_FILE, BuildState
from appshelf.formats.canonical import check_timestamp_range, format_timestamp
from appshelf.formats.documents import LogHead, Signed, Snapshot
from appshelf.formats.log import CHECKPOINT
from appshelf.formats.mpkverify import check_production
from appshelf.formats.schemas import schema_files
from appshelf.mirrors.anip import anip_files
from appshelf.mirrors.appr import mirror_files
from appshelf.mirrors.calimero import calimero_files
from appshelf.signing.keys import RegistryKey, preview_key, select_signing_key
from appshelf.signing.releaselog import LogState, RotationStatement
from appshelf.source.channels import read_channels
from appshelf.source.gitstate import GitApps, read_git_apps
from appshelf.source.lifecycle import LifecycleFile, read_lifecycle
from appshelf.source.models import RegistryConfig
from appshelf.source.rotations import read_rotations, read_tuf_handover
from appshelf.source.tree import SourceTree, load_source_tree, read_registry_config

Generator = Callable[[RegistryPlan], OutputFiles]


@dataclass
class BuildOptions:
    """Everything about a build except where its source and output are.

    Attributes:
        key_file: The Ed25519 signing key file; default `$APPSHELF_SIGNING_KEY`, then
            registry.toml's `[signing] key_file`, else the development key.
        production: Refuse the development key (`[signing] production` in
            registry.toml asks for this too).
        previous: An earlier output to take the published state from, so published
            versions stay immutable.
        previous_source: Published state elsewhere (`--previous-url`: a web host;
            `--deploy`: a bucket); verified like the output folder before use.
        new_registry: Nothing is published at `previous_source` yet: start the
            registry's history there (without it, finding nothing is an error).
        now: The build time; default `$SOURCE_DATE_EPOCH`, else the current time.
        resign: Sign a new snapshot even when nothing changed (the scheduled re-sign).
        base_url: Overrides registry.toml's base URL (preview servers, Pages demos).
        environ: The environment to read variables from; default a copy of os.environ.
        generators: Extra outputs, e.g. the HTML site.
        cache: Keep `.appshelf-cache/` beside the output (it only ever saves time).
        preview: Sign with the preview (development) key whatever registry.toml says, so
            a production registry previews without credentials (`appshelf serve`).
    """

    key_file: Path | None = None
    production: bool = False
    previous: Path | None = None  # an earlier output to take published state from
    previous_source: PublishedSource | None = None  # published state elsewhere (URL, bucket)
    new_registry: bool = False  # nothing published yet where --previous-url/--deploy points
    now: datetime | None = None  # default: $SOURCE_DATE_EPOCH, else the current time
    resign: bool = False  # sign a new snapshot even when nothing changed
    base_url: str | None = None  # overrides registry.toml (preview servers, Pages demos)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    generators: tuple[Generator, ...] = ()  # extra outputs (the HTML site)
    cache: bool = True  # keep .appshelf-cache/ beside the output (only ever saves time)
    # `appshelf serve`: sign with the preview (development) key whatever registry.toml
    # says, so a production registry previews without credentials and a preview is never
    # signed with the real key.
    preview: bool = False


class BuildReport(BaseModel):
    """What a build did, for the CLI to print (the library prints nothing).

    Attributes:
        source: The source folder.
        output: The output folder.
        apps: Apps in the registry.
        apps_reused: Unchanged apps not read, planned or rendered again.
        versions: Versions in the registry.
        artifacts_hashed: Artifacts hashed in this build (others came from the cache).
        bytes_hashed: Bytes hashed in this build.
        files_total: Files in the output.
        files_written: Files written (new or changed).
        files_unchanged: Files left as they were.
        files_removed: Files removed from the output.
        changed: Whether the output changed at all.
        snapshot_version: The snapshot's version.
        snapshot_expires: When the snapshot expires (RFC 3339, UTC).
        key_id: The id of the key that signed the build.
        development_key: Whether that is the well-known development key.
        log_entries: The release log's size after this build.
        log_appended: How many entries this build added to it.
        log_bytes_read: Bytes of the published log (checkpoint and tiles) read to
            verify it; entries this machine saw before are not read again.
        warnings: Problems that do not stop the build.
        seconds: How long the build took.
    """

    source: str
    output: str
    apps: int
    apps_reused: int  # unchanged apps not read, planned or rendered again (builder/memo.py)
    versions: int
    artifacts_hashed: int
    bytes_hashed: int
    files_total: int
    files_written: int
    files_unchanged: int
    files_removed: int
    changed: bool
    snapshot_version: int
    snapshot_expires: str
    key_id: str
    development_key: bool
    log_entries: int  # the release log's size after this build
    log_appended: int  # entries this build added
    log_bytes_read: int  # of the published log (checkpoint and tiles) read to verify it
    warnings: list[str]
    seconds: float


def build_clock(environ: Mapping[str, str]) -> datetime:
    """Reproducible builds: honour SOURCE_DATE_EPOCH, as other build tools do."""
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        if not epoch.isascii() or not epoch.isdigit() or len(epoch) > 12:
            raise OutputError(f"SOURCE_DATE_EPOCH: expected whole seconds, got {epoch[:40]!r}")
        try:
            return check_timestamp_range(datetime.fromtimestamp(int(epoch), UTC))
        except (ValueError, OverflowError, OSError) as exc:
            raise OutputError(f"SOURCE_DATE_EPOCH: {exc}") from None
    return datetime.now(UTC).replace(microsecond=0)


def check_output_location(source: Path, output: Path) -> None:
    """Refuse outputs that would clobber the source or an unrelated folder."""
    check_output_entry(output.absolute())  # a link: never written through
    source, output = source.resolve(), output.resolve()
    if (
        output == source
        or output in source.parents
        or (source / "apps") in [output, *output.parents]
    ):
        raise OutputError(
            f"{output}: the output folder must not contain or be inside the source tree's apps/"
        )
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not looks_like_output(output):
        raise OutputError(
            f"{output}: exists, is not empty and holds no snapshot.json, so it is not an "
            "appshelf output; choose a new or empty folder (the build replaces its contents)"
        )


def load_signing_key(tree: SourceTree, options: BuildOptions) -> RegistryKey:
    if options.preview:
        return preview_key()
    signing = tree.config.signing
    configured = (tree.root / signing.key_file) if signing.key_file else None
    return select_signing_key(
        key_file=options.key_file,
        configured_key_file=configured,
        env_var=signing.key_env,
        environ=dict(options.environ),
        expected_keyid=signing.key_id,
        production=options.production or signing.production,
    )


def check_bundle_keys(tree: SourceTree, options: BuildOptions) -> None:
    """A production build refuses Calimero bundles signed with a publicly known key.

    Raises:
        SourceTreeError: every such bundle.
    """
    if options.preview or not (options.production or tree.config.signing.production):
        return
    problems = []
    for app in tree.apps:
        for version in app.versions:
            if version.bundle is None or version.artifact.path is None:
                continue
            try:
                check_production(version.bundle)
            except BundleError as exc:
                where = version.artifact.path.relative_to(tree.root).as_posix()
                problems.append(Problem(where, exc.field, f"Calimero bundle refused: {exc.reason}"))
    if problems:
        raise SourceTreeError(problems)


def hash_artifacts(
    tree: SourceTree,
    cache: BuildCache | None = None,
    stats: HashStats | None = None,
    keep: Callable[[str], bool] | None = None,
    git: GitApps | None = None,
    state: BuildState | None = None,
) -> dict[tuple[str, str], FileHash]:
    """The digest of every local artifact of the apps read, by (app, version): by blob id
    (what git vouches for) from the cache or the published build state, by stat key from
    the cache, else read.

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
        blobs = _blob_ids(tree, cache, git, local.values(), state)
        by_path = hash_files(
            local.values(), cache=cache, stats=stats, prune=True, keep=keep, blobs=blobs
        )
    except OSError as exc:
        where = Path(exc.filename).relative_to(tree.root).as_posix() if exc.filename else "?"
        raise SourceTreeError([Problem(where, "", f"cannot read ({exc.strerror})")]) from None
    return {ident: by_path[path] for ident, path in local.items()}


def _state_files(tree: SourceTree, log: LogState, git: GitApps | None) -> OutputFiles:
    """The build state that travels with the registry (spec 9.7), from a git work tree."""
    if git is None:
        return {}
    keys = [app.key for app in tree.apps] + [app.key for app in tree.unchanged]
    data = state_file(tree.config.registry.base_url, keys, log, git)
    return {STATE_FILE: OutputFile.from_bytes(data)}


def _blob_ids(
    tree: SourceTree,
    cache: BuildCache | None,
    git: GitApps | None,
    paths: Iterable[Path],
    state: BuildState | None,
) -> BlobIds | None:
    """The blob ids of the artifacts git vouches for, with every blob id of HEAD's apps/
    kept in the cache (an unchanged app's artifacts are not hashed, so not listed)."""
    if cache is None or git is None or (cache.path is None and state is None):
        return None
    wanted = {path.relative_to(tree.root).as_posix(): path for path in paths}
    ids = {wanted[rel]: oid for rel, oid in git.blobs.items() if rel in wanted}
    memory = PublishedBlobs(cache, state) if state is not None else cache
    return BlobIds(memory, ids, frozenset(git.known))


def _in_apps(tree: SourceTree, relative: bool) -> Callable[[str], bool]:
    """Whether a cache row's path lies in an unchanged app's folder (which was not read,
    so its rows must not be pruned as stale). Paths are relative to the source root, or
    absolute."""
    unchanged = {app.key for app in tree.unchanged}
    prefix = "apps/" if relative else f"{tree.root}/apps/"

    def keep(name: str) -> bool:
        return name.startswith(prefix) and name[len(prefix) :].split("/", 1)[0] in unchanged

    return keep


def known_artifact_digests(previous: PreviousOutput, base_url: str) -> dict[str, str]:
    """Output paths of earlier local artifacts -> sha256, so they are not re-read."""
    if previous.log is None:
        return {}
    return {
        unquote(release.entry.artifact.url[len(base_url) :]): release.entry.artifact.sha256
        for release in previous.log.releases.values()
        if release.entry.artifact.url.startswith(base_url)
    }


def build_registry(source: Path, output: Path, options: BuildOptions | None = None) -> BuildReport:
    """Build the registry in `source` into `output`: see the module docstring.

    Args:
        source: the source tree (registry.toml and apps/).
        output: the output folder, created or updated in place.
        options: everything else; defaults to `BuildOptions()`.

    Returns:
        What was built, written and kept.

    Raises:
        SourceTreeError: the source has problems (all of them are listed).
        OutputError: the output cannot be written safely (nothing is changed then), or
            the published state (`options.previous`, `options.previous_source`, or the
            output itself) is missing (without `new_registry`), present (with it),
            damaged, or not one this key may continue.
        SigningKeyError: no usable signing key.
        RemoteAccessError: `options.previous_source` (a bucket or web host) cannot be
            read.
        SiteBuildError: a generator in `options.generators` (the HTML site) cannot
            render one of its templates.
    """
    options = options or BuildOptions()
    started = time.perf_counter()
    now = options.now or build_clock(options.environ)
    if not source.is_dir():
        return _build_locked(source, output, options, now, started)
    check_output_location(source, output)  # before the lock and cache are made beside it
    with output_lock(output):
        return _build_locked(source, output, options, now, started)


def _build_locked(
    source: Path, output: Path, options: BuildOptions, now: datetime, started: float
) -> BuildReport:
    # 1. Gather: source tree, earlier output, signing key, artifact hashes.
    if source.is_dir():
        recover_interrupted(output)  # a killed build's half-done commit is finished first
    cache = BuildCache.for_output(output) if options.cache else BuildCache(None)
    try:
        # Git tells which files are unchanged (for the local cache, and for the published
        # build state of a URL or bucket), and what log/state.json says: read it whatever
        # the cache, since the output depends on it.
        git = read_git_apps(source.resolve()) if source.is_dir() else None
        memo = _app_memo(source, output, options, cache, git)
        tree = load_source_tree(source, base_url=options.base_url, memo=cache, reuse=memo)
        cache.flush(prune=True, keep=_in_apps(tree, relative=True))
        if memo is not None:  # apps that are gone: their rows, unless a full read pruned them
            gone = memo.gone_apps(tree)
            cache.forget_folders("sources", [f"apps/{key}/" for key in gone])
            cache.forget_folders("artifacts", [f"{tree.root}/apps/{key}/" for key in gone])
        check_output_location(tree.root, output)
        key = load_signing_key(tree, options)
        if memo is not None and any(r.key_id != key.keyid for r, _ in memo.reused.values()):
            memo.forget_all()  # a new signing key: every manifest is signed again
            tree = load_source_tree(source, base_url=options.base_url, memo=cache, reuse=memo)
        check_bundle_keys(tree, options)
        skip = memo.reused if memo is not None else {}
        rotations = read_rotations(tree.root)
        handovers = _rotations_to(rotations, key)
        want_state = git is not None and options.previous_source is not None
        previous = _read_published(tree, output, options, key, handovers, skip, want_state)
        log = _start_log(tree, key, rotations, handovers, previous, now)
        tuf = _read_tuf(tree, output, options, key, handovers)
        return _build(
            tree, output, options, now, started, previous, log, key, cache, memo, tuf, git
        )
    finally:
        cache.close()


def _published_source(output: Path, options: BuildOptions) -> tuple[PublishedSource, bool]:
    """Where the published state is, and whether it was asked for explicitly."""
    if options.previous_source is not None:
        return options.previous_source, True
    if options.previous is not None:
        return FolderSource(options.previous, f"--previous {options.previous}"), True
    return FolderSource(output, f"the output folder {output}"), False


def _rotations_to(rotations: list[bytes], key: RegistryKey) -> list[RotationStatement]:
    """The rotation statements in keys/ that hand over to `key`, unverified: their old key
    only widens which snapshot signer is accepted; start_log checks their signatures
    against the log's active key before anything is logged."""
    found = []
    for data in rotations:
        try:  # bounded: keys/ is input like any other (a 64 KiB file of "[" included)
            statement = RotationStatement.model_validate(loads_bounded(data)["signed"])
        except (ValueError, KeyError, TypeError):
            continue
        if statement.new.keyid == key.keyid:
            found.append(statement)
    return found


def _read_published(
    tree: SourceTree,
    output: Path,
    options: BuildOptions,
    key: RegistryKey,
    handovers: list[RotationStatement],
    skip: object,
    want_state: bool = False,
) -> PreviousOutput:
    source, asked = _published_source(output, options)
    base = tree.config.registry.base_url
    seen, seen_log = load_seen(output) if options.cache else (None, None)
    olds = [bytes.fromhex(r.old.public) for r in handovers]
    trust = Trust(base, [key.public_bytes, *olds], seen, seen_log)
    try:
        previous = read_previous(
            source,
            trust,
            skip_apps=skip,  # type: ignore[arg-type]
            want_state=want_state,
        )
    except OutputError as exc:
        if options.new_registry:
            return PreviousOutput()
        raise _explain_key(source, key, exc) from None
    if previous.exists and options.new_registry:
        raise OutputError(
            f"{source.description}: a registry is already published there (snapshot version "
            f"{previous.snapshot.version if previous.snapshot else '?'}); drop --new-registry "
            "to build on it"
        )
    if not previous.exists and asked and not options.new_registry and not source.is_empty():
        raise OutputError(
            f"{source.description}: no published registry found there (no snapshot.json). If "
            "this is the registry's first publish, pass --new-registry; otherwise check the "
            "address: building as new would restart its history"
        )
    if previous.log is not None and previous.checkpoint is not None and not _writes_anchor(options):
        store_seen(output, previous.checkpoint, previous.log)  # elsewhere: what was read
    return previous


def _read_tuf(
    tree: SourceTree,
    output: Path,
    options: BuildOptions,
    key: RegistryKey,
    handovers: list[RotationStatement],
) -> TufPrevious | None:
    """The verified TUF metadata published before, when `[tuf]` is on (its versions
    carry over); read from the same place as the rest of the published state."""
    if not tree.config.tuf.enabled:
        return None
    source, _ = _published_source(output, options)
    olds = [bytes.fromhex(r.old.public) for r in handovers]
    return read_tuf_previous(source, [key.public_bytes, *olds])


def _tuf_files(
    plan: RegistryPlan,
    output: Path,
    options: BuildOptions,
    previous: TufPrevious | None,
    key: RegistryKey,
    cache: BuildCache,
    now: datetime,
) -> OutputFiles:
    """`tuf/`: every planned file a target (builder/tufrepo.py)."""
    config = plan.tree.config
    # The output folder is the published state read: its TUF targets are those of the
    # build that wrote the files the cache vouches for (elsewhere they may not be).
    listed = (
        read_bin_targets(FolderSource(output), previous)
        if previous is not None and _writes_anchor(options)
        else None
    )
    targets = site_targets(plan.files, plan.reused, output, cache, listed)
    following = len(previous.roots) + 1 if previous is not None else 1
    settings = TufSettings(
        bins=config.tuf.bins,
        root_lifetime=timedelta(days=config.tuf.root_lifetime_days),
        targets_lifetime=timedelta(days=config.tuf.targets_lifetime_days),
        short_lifetime=timedelta(days=config.signing.snapshot_lifetime_days),
        now=now,
        resign=options.resign,
    )
    handover = read_tuf_handover(plan.tree.root, following)
    return plan_tuf(targets, previous, handover, key, settings)


def _remember_written(
    output: Path, options: BuildOptions, note: bytes | None, log: LogState
) -> None:
    """When the output is the published registry (no --previous, URL or bucket), the log
    just written is the one this machine saw last: the next build must extend it, so an
    output put back to an older build is caught as a rollback (and only the entries after
    it are read). Elsewhere the output is published later, by another step, and the
    anchor stays what was read there."""
    if note is not None and _writes_anchor(options):
        store_seen(output, note, log)


def _writes_anchor(options: BuildOptions) -> bool:
    """The output is the published registry: its new log becomes the anchor."""
    return options.cache and options.previous is None and options.previous_source is None


def _explain_key(source: PublishedSource, key: RegistryKey, exc: OutputError) -> Exception:
    """A published snapshot signed by another key: say which setting or step is missing
    (the signer's id is read unverified, for the message only)."""
    try:
        raw = source.read("snapshot.json", 64 << 20) or b""
        signer = Signed[Snapshot].model_validate_json(raw).signatures[0].keyid
    except (OutputError, ValueError):
        return exc
    if signer == key.keyid:
        return exc
    if key.development:
        return SigningKeyError(
            f"{source.description}: snapshot.json is signed by key {signer[:16]}..., but this "
            "build found no signing key and would sign with the development key. Set "
            "$APPSHELF_SIGNING_KEY "
            "(in CI: the repository secret), or [signing] key_file in registry.toml, or pass "
            "--key-file"
        )
    return SigningKeyError(
        f"{source.description}: snapshot.json is signed by key {signer[:16]}..., not by this "
        f"build's key {key.keyid[:16]}... ({key.origin}). Sign with that key, or hand signing "
        "over to this one with a rotation statement signed by both keys: `appshelf rotate-key "
        "--old-key-file OLD --new-key-file NEW` writes it into keys/"
    )


def _start_log(
    tree: SourceTree,
    key: RegistryKey,
    rotations: list[bytes],
    handovers: list[RotationStatement],
    previous: PreviousOutput,
    now: datetime,
) -> LogState:
    genesis = logged_key(key)
    for rotation in handovers:
        if previous.adopted and previous.snapshot_keyids[:1] == (rotation.old.keyid,):
            genesis = rotation.old  # the old key signed the registry from before the log
    return start_log(
        previous.log,
        key,
        genesis,
        rotations,
        tree.config.registry.base_url,
        format_timestamp(now),
        previous.versions if previous.adopted else None,
    )


_T = TypeVar("_T")


def _per_app(tree: SourceTree, read: Callable[[Path, Path], _T]) -> dict[str, _T]:
    """`read(app folder, root)` for every app read in full; every problem at once."""
    problems: list[Problem] = []
    found: dict[str, _T] = {}
    for app in tree.apps:
        try:
            found[app.key] = read(app.folder, tree.root)
        except SourceTreeError as exc:
            problems += exc.problems
    if problems:
        raise SourceTreeError(problems)
    return found


def _lifecycles(tree: SourceTree) -> dict[str, LifecycleFile]:
    return _per_app(tree, read_lifecycle)


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
    salts = [*generators, _ModeSalt(options)]
    return AppMemo(cache, output.absolute(), source.resolve(), salts, git=git)


@dataclass(frozen=True)
class _ModeSalt:
    """Build options that decide whether a reused app would still be accepted: a bundle
    checked in a non-production build is checked again by a production one (spec 12.4)."""

    options: BuildOptions

    def __call__(self, plan: RegistryPlan) -> OutputFiles:
        return {}

    def memo_salt(self, root: Path, config: RegistryConfig) -> str:
        return f"production={self.options.production and not self.options.preview}"


def _mirrors_on(source: Path) -> bool:
    """Whether registry.toml turns on a mirror made from every app's plan: appr's, or
    Calimero's, which needs the bundle manifests a reused app does not carry (spec 12.6).
    A broken registry.toml is reported by the build."""
    try:
        mirrors = read_registry_config(source).mirrors
    except SourceTreeError:
        return False
    return mirrors.appr or mirrors.calimero


def _build(
    tree: SourceTree,
    output: Path,
    options: BuildOptions,
    now: datetime,
    started: float,
    previous: PreviousOutput,
    log: LogState,
    key: RegistryKey,
    cache: BuildCache,
    memo: AppMemo | None,
    tuf: TufPrevious | None = None,
    git: GitApps | None = None,
) -> BuildReport:
    """Hash, plan, write, report: each stage returns what the next one reads."""
    hash_stats = HashStats()
    unchanged = _in_apps(tree, relative=False)
    hashes = hash_artifacts(tree, cache, hash_stats, unchanged, git, previous.state)
    plan, keep = _plan_build(
        tree, output, options, now, previous, log, key, cache, memo, tuf, git, hashes
    )
    stats = _write_build(tree, output, options, previous, log, key, cache, memo, plan, keep)
    return _report(
        tree, output, options, started, previous, log, key, cache, plan, stats, hash_stats
    )


def _plan_build(
    tree: SourceTree,
    output: Path,
    options: BuildOptions,
    now: datetime,
    previous: PreviousOutput,
    log: LogState,
    key: RegistryKey,
    cache: BuildCache,
    memo: AppMemo | None,
    tuf: TufPrevious | None,
    git: GitApps | None,
    hashes: dict[tuple[str, str], FileHash],
) -> tuple[RegistryPlan, Callable[[str], bool]]:
    """Plan every file in memory (JSON documents, schemas, extra outputs, snapshot last)
    and which no-longer-planned files the writer leaves. Unchanged apps
    (builder/memo.py) are not planned again: their files are reused."""
    reused = [app for _, app in memo.reused.values()] if memo is not None else []
    channels = _per_app(tree, read_channels)
    plan = plan_registry(tree, hashes, log, key, now, reused, _lifecycles(tree), channels)
    base = tree.config.registry.base_url
    plan.files.update({p: OutputFile.from_bytes(d) for p, d in log_files(log, key, base).items()})
    plan.files.update({path: OutputFile.from_bytes(data) for path, data in schema_files().items()})
    plan.files.update(_state_files(tree, log, git))
    if tree.config.mirrors.anip:  # [mirrors] anip = true: the ANIP read mirror (spec 15)
        plan.files.update(anip_files(plan, key))
    plan.files.update(calimero_files(plan))  # [mirrors] calimero (spec section 12)
    for generator in options.generators:
        extra = generator(plan)
        clash = sorted(set(extra) & (plan.files.keys() | plan.reused))
        if clash:
            raise OutputError(f"generator output clashes with registry files: {clash[:5]}")
        plan.files.update(extra)
    plan.files.update(mirror_files(plan))  # opt-in ([mirrors]); under cnr/, pinned below
    head = LogHead(size=log.size, root=log.root.hex())
    plan_snapshot(plan, previous, key, now, force_new=options.resign, log=head)
    assert plan.snapshot is not None
    add_pinned_copies(plan)  # consistent snapshots: each pinned file also by its digest
    if tree.config.tuf.enabled:  # [tuf]: a TUF repository of every site file (spec 16)
        plan.files.update(_tuf_files(plan, output, options, tuf, key, cache, now))
    keep = keep_rule(output.absolute(), plan, plan.snapshot is previous.snapshot)
    return plan, keep


def _write_build(
    tree: SourceTree,
    output: Path,
    options: BuildOptions,
    previous: PreviousOutput,
    log: LogState,
    key: RegistryKey,
    cache: BuildCache,
    memo: AppMemo | None,
    plan: RegistryPlan,
    keep: Callable[[str], bool],
) -> WriteStats:
    """Stage only what changed, then commit it in reader-safe order (writer.py); then
    remember what was written."""
    known = (
        known_artifact_digests(previous, tree.config.registry.base_url)
        if previous.root is not None and previous.root.resolve() == output.resolve()
        else {}
    )
    reused_apps = set(memo.reused) if memo is not None else set()
    note = plan.files[CHECKPOINT].data  # (the writer drops the bytes it has written)
    stats = write_tree(plan.files, output, known, cache, plan.reused, reused_apps, keep)
    _remember_written(output, options, note, log)
    if memo is not None:
        memo.store(tree.config, plan, key.keyid, stats.keys)
    return stats


def _report(
    tree: SourceTree,
    output: Path,
    options: BuildOptions,
    started: float,
    previous: PreviousOutput,
    log: LogState,
    key: RegistryKey,
    cache: BuildCache,
    plan: RegistryPlan,
    stats: WriteStats,
    hash_stats: HashStats,
) -> BuildReport:
    assert plan.snapshot is not None
    before = previous.log.size if previous.log is not None else 0
    warnings = list(plan.warnings) + cache.problems
    if key.development and not options.preview:
        warnings.insert(
            0,
            "signed with the DEVELOPMENT key, which anyone can derive: fine for trying "
            "appshelf, never for a registry people trust (see `appshelf keygen`)",
        )
    return BuildReport(
        source=str(tree.root),
        output=str(output.resolve()),
        apps=tree.app_count,
        apps_reused=len(tree.unchanged),
        versions=tree.version_count,
        artifacts_hashed=hash_stats.files_read,
        bytes_hashed=hash_stats.bytes_read,
        files_total=len(plan.files.keys() | plan.reused),
        files_written=stats.written,
        files_unchanged=stats.unchanged,
        files_removed=stats.removed,
        changed=stats.changed,
        snapshot_version=plan.snapshot.version,
        snapshot_expires=plan.snapshot.expires,
        key_id=key.keyid,
        development_key=key.development,
        log_entries=log.size,
        log_appended=log.size - before,
        log_bytes_read=previous.bytes_read,
        warnings=warnings,
        seconds=round(time.perf_counter() - started, 3),
    )
