"""`build_registry`: the whole build, readable top to bottom.

Gather everything first (source, earlier output, key, hashes), then plan: each app is
planned, rendered and staged in turn (builder/streaming.py; or every app first, for a
generator or mirror that needs the whole plan), and only its summary and digests are
kept. The shared files and the snapshot come last, and only then is the output changed,
atomically (builder/writer.py). Nothing is printed here: the report is returned for the
CLI to show.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import unquote

from pydantic import BaseModel

from appshelf.builder.consistent import add_pinned_copies, keep_rule
from appshelf.builder.housekeeping import check_output_entry, output_lock
from appshelf.builder.logcache import load_seen, store_seen
from appshelf.builder.logplan import log_files, logged_key, start_log
from appshelf.builder.outputs import OutputFile, OutputFiles
from appshelf.builder.plan import RegistryPlan, plan_registry, plan_snapshot, plan_start
from appshelf.builder.previous import (
    FolderSource,
    PreviousOutput,
    PublishedSource,
    Trust,
    looks_like_output,
    read_previous,
)
from appshelf.builder.reuse import Reuse
from appshelf.builder.statefile import state_file
from appshelf.builder.streaming import HandOn, can_stream, refuse_clashes, start_streams
from appshelf.builder.writer import Spool, WriteStats, recover_interrupted
from appshelf.errors import BundleError, OutputError, Problem, SigningKeyError, SourceTreeError
from appshelf.filehash import FileHash, HashStats
from appshelf.formats.boundedjson import loads_bounded
from appshelf.formats.buildstate import STATE_FILE
from appshelf.formats.canonical import check_timestamp_range, format_timestamp
from appshelf.formats.documents import LogHead, Signed, Snapshot
from appshelf.formats.log import CHECKPOINT, Checkpoint
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
from appshelf.source.rotations import read_rotations, read_tuf_handover
from appshelf.source.tree import SourceTree

if TYPE_CHECKING:  # python-tuf (and through it boto3) is imported only when [tuf] is on
    from appshelf.builder.tufprevious import TufPrevious

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


def _state_files(tree: SourceTree, log: LogState, git: GitApps | None) -> OutputFiles:
    """The build state that travels with the registry (spec 9.7), from a git work tree."""
    if git is None:
        return {}
    data = state_file(tree.config.registry.base_url, tree.app_keys, log, git)
    return {STATE_FILE: OutputFile.from_bytes(data)}


def known_artifact_digests(previous: PreviousOutput, base_url: str) -> dict[str, str]:
    """Output paths of earlier local artifacts -> sha256, so they are not re-read."""
    if previous.log is None:
        return {}
    return {
        unquote(release.artifact.url[len(base_url) :]): release.artifact.sha256
        for release in previous.log.releases.values()
        if release.artifact.url.startswith(base_url)
    }


@dataclass(eq=False)
class _KnownDigests(Mapping[str, str]):
    """`known_artifact_digests`, made on the first lookup: a build that writes no artifact
    makes none (one `unquote` per logged release: 0.2 s at 100,000 under cProfile)."""

    previous: PreviousOutput
    base_url: str
    _found: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self._found is None:
            self._found = known_artifact_digests(self.previous, self.base_url)
        return self._found

    def __getitem__(self, path: str) -> str:
        return self._all()[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


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
    with output_lock(output), _fewer_collections():
        return _build_locked(source, output, options, now, started)


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cycle collector less often while building: a build allocates millions of
    small objects that live to its end and form few cycles, and with the default
    thresholds the collector scanned them over and over (about a quarter of a no-op
    build's time at 20,000 versions, same peak memory; benchmarks/NOTES.md). The caller's
    thresholds are put back afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _build_locked(
    source: Path, output: Path, options: BuildOptions, now: datetime, started: float
) -> BuildReport:
    """Gather (source tree, signing key, published state, release log), then run the
    build's stages (`Build`)."""
    if source.is_dir():
        recover_interrupted(output)  # a killed build's half-done commit is finished first
    # The log this machine saw last is replayed in a thread while git answers below (its
    # commands wait outside the interpreter), and only then: beside anything else, such as
    # SQLite handing over rows one by one, the two threads only wait for each other.
    with ThreadPoolExecutor(1, thread_name_prefix="appshelf-seen-log") as pool:
        seen = pool.submit(load_seen, output) if options.cache else None
        # Git tells which files are unchanged (for the local cache, and for the published
        # build state of a URL or bucket), and what log/state.json says: read it whatever
        # the cache, since the output depends on it.
        git = read_git_apps(source.resolve()) if source.is_dir() else None
        anchor = seen.result() if seen is not None else (None, None)
    return _build_gathered(source, output, options, now, started, git, anchor)


def _build_gathered(
    source: Path,
    output: Path,
    options: BuildOptions,
    now: datetime,
    started: float,
    git: GitApps | None,
    anchor: tuple[Checkpoint | None, LogState | None],
) -> BuildReport:
    reuse = Reuse.for_build(source, output, options, git)
    try:
        tree = reuse.read_tree(source, options.base_url)
        check_output_location(tree.root, output)
        key = load_signing_key(tree, options)
        if reuse.needs_reread(key.keyid):
            tree = reuse.read_tree(source, options.base_url, again=True)
        check_bundle_keys(tree, options)
        rotations = read_rotations(tree.root)
        handovers = _rotations_to(rotations, key)
        want_state = git is not None and options.previous_source is not None
        previous = _read_published(tree, output, options, key, handovers, reuse, anchor, want_state)
        log = _start_log(tree, key, rotations, handovers, previous, now)
        tuf = _read_tuf(tree, output, options, key, handovers)
        build = Build(tree, output, options, now, started, key, reuse, git, previous, log, tuf)
        return build.run()
    finally:
        reuse.close()


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
    reuse: Reuse,
    anchor: tuple[Checkpoint | None, LogState | None],
    want_state: bool = False,
) -> PreviousOutput:
    source, asked = _published_source(output, options)
    base = tree.config.registry.base_url
    seen, seen_log = anchor
    olds = [bytes.fromhex(r.old.public) for r in handovers]
    trust = Trust(base, [key.public_bytes, *olds], seen, seen_log)
    try:
        previous = read_previous(
            source,
            trust,
            skip_apps=reuse.reused,
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
    from appshelf.builder.tufprevious import read_tuf_previous

    source, _ = _published_source(output, options)
    olds = [bytes.fromhex(r.old.public) for r in handovers]
    return read_tuf_previous(source, [key.public_bytes, *olds])


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


@dataclass
class Build:
    """One build, carried top to bottom once everything is gathered: its stages (hash,
    plan, write, report) are methods, each returning what the next one takes.

    Attributes:
        tree: The source tree as read (unchanged apps not read again).
        output: The output folder.
        options: The build's options.
        now: The build time.
        started: When the build started (`time.perf_counter()`), for the report.
        key: The signing key.
        reuse: What earlier builds left (builder/reuse.py); it only ever saves time.
        git: What git vouches for in the source, which log/state.json is made from.
        previous: The published state (verified).
        log: The release log, with this build's entries appended.
        tuf: The verified TUF metadata published before, when `[tuf]` is on.
    """

    tree: SourceTree
    output: Path
    options: BuildOptions
    now: datetime
    started: float
    key: RegistryKey
    reuse: Reuse
    git: GitApps | None
    previous: PreviousOutput
    log: LogState
    tuf: TufPrevious | None

    def run(self) -> BuildReport:
        """Hash, plan, write, report."""
        hash_stats = HashStats()
        hashes = self.reuse.hash(self.tree, hash_stats, self.previous.state)
        spool = self.reuse.spool(self.output, self._known_digests())
        try:
            plan = self.plan(hashes, spool)
            stats = self.write(plan, spool)
        except BaseException:
            spool.discard()
            raise
        return self.report(plan, stats, hash_stats)

    def plan(self, hashes: dict[tuple[str, str], FileHash], spool: Spool) -> RegistryPlan:
        """Every file (JSON documents, schemas, extra outputs, snapshot last). Unchanged
        apps (builder/memo.py) are not planned again: their files are reused. When the
        generators can, each app is handed on to `spool` as soon as it is planned
        (builder/streaming.py), and only its digests are kept."""
        tree, key, log = self.tree, self.key, self.log
        reused = list(self.reuse.reused.values())
        channels = _per_app(tree, read_channels)
        start = plan_start(tree, key, log)
        generators = self.options.generators
        streams = start_streams(start, generators) if can_stream(tree.config, generators) else None
        finish = HandOn(streams, spool) if streams is not None else None
        lifecycles = _lifecycles(tree)
        plan = plan_registry(
            tree, hashes, log, key, self.now, reused, lifecycles, channels, start, finish
        )
        base = tree.config.registry.base_url
        plan.files.update(log_files(log, key, base))
        schemas = schema_files()
        plan.files.update({path: OutputFile.from_bytes(data) for path, data in schemas.items()})
        plan.files.update(_state_files(tree, log, self.git))
        if tree.config.mirrors.anip:  # [mirrors] anip = true: the ANIP read mirror (spec 15)
            plan.files.update(anip_files(plan, key))
        plan.files.update(calimero_files(plan))  # [mirrors] calimero (spec section 12)
        for index, generator in enumerate(generators):
            extra = streams[index].finish(plan) if streams is not None else generator(plan)
            refuse_clashes(extra, plan.files.keys() | plan.reused)
            plan.files.update(extra)
        plan.files.update(mirror_files(plan))  # opt-in ([mirrors]); under cnr/, pinned below
        head = LogHead(size=log.size, root=log.root.hex())
        plan_snapshot(plan, self.previous, key, self.now, force_new=self.options.resign, log=head)
        add_pinned_copies(plan)  # consistent snapshots: each pinned file also by its digest
        if tree.config.tuf.enabled:  # [tuf]: a TUF repository of every site file (spec 16)
            plan.files.update(self._tuf_files(plan))
        return plan

    def _tuf_files(self, plan: RegistryPlan) -> OutputFiles:
        """`tuf/`: every planned file a target (builder/tufrepo.py)."""
        from appshelf.builder.tufprevious import read_bin_targets
        from appshelf.builder.tufrepo import TufSettings, plan_tuf, site_targets

        config, previous = self.tree.config, self.tuf
        # The output folder is the published state read: its TUF targets are those of the
        # build that wrote the files the cache vouches for (elsewhere they may not be).
        listed = (
            read_bin_targets(FolderSource(self.output), previous)
            if previous is not None and _writes_anchor(self.options)
            else None
        )
        targets = site_targets(plan.files, plan.reused, self.output, self.reuse.cache, listed)
        following = len(previous.roots) + 1 if previous is not None else 1
        settings = TufSettings(
            bins=config.tuf.bins,
            root_lifetime=timedelta(days=config.tuf.root_lifetime_days),
            targets_lifetime=timedelta(days=config.tuf.targets_lifetime_days),
            short_lifetime=timedelta(days=config.signing.snapshot_lifetime_days),
            now=self.now,
            resign=self.options.resign,
        )
        handover = read_tuf_handover(self.tree.root, following)
        return plan_tuf(targets, previous, handover, self.key, settings)

    def _known_digests(self) -> Mapping[str, str]:
        """Earlier artifacts' digests, when the output is where they were published."""
        output, previous = self.output, self.previous
        if previous.root is not None and previous.root.resolve() == output.resolve():
            return _KnownDigests(previous, self.tree.config.registry.base_url)
        return {}

    def write(self, plan: RegistryPlan, spool: Spool) -> WriteStats:
        """Stage only what changed (what `spool` has not staged yet), then commit it in
        reader-safe order (writer.py), leaving the no-longer-planned files `keep_rule`
        names; then remember what was written."""
        output, previous = self.output, self.previous
        assert plan.snapshot is not None
        keep = keep_rule(output.absolute(), plan, plan.snapshot is previous.snapshot)
        note = plan.files[CHECKPOINT].data  # (the writer drops the bytes it has written)
        stats = self.reuse.write(plan, spool, keep, self.key.keyid)
        _remember_written(output, self.options, note, self.log)
        return stats

    def report(self, plan: RegistryPlan, stats: WriteStats, hashed: HashStats) -> BuildReport:
        """What was built, written and kept."""
        assert plan.snapshot is not None
        tree, key, log = self.tree, self.key, self.log
        before = self.previous.log.size if self.previous.log is not None else 0
        warnings = list(plan.warnings) + self.reuse.problems
        if key.development and not self.options.preview:
            warnings.insert(
                0,
                "signed with the DEVELOPMENT key, which anyone can derive: fine for trying "
                "appshelf, never for a registry people trust (see `appshelf keygen`)",
            )
        return BuildReport(
            source=str(tree.root),
            output=str(self.output.resolve()),
            apps=tree.app_count,
            apps_reused=len(tree.unchanged),
            versions=tree.version_count,
            artifacts_hashed=hashed.files_read,
            bytes_hashed=hashed.bytes_read,
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
            log_bytes_read=self.previous.bytes_read,
            warnings=warnings,
            seconds=round(time.perf_counter() - self.started, 3),
        )
