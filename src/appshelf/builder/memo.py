"""Unchanged apps are not read, planned, signed or rendered again.

After a build, each app's record in the build cache (`apps` table) holds: the stat
keys of its source folder's entries (taken before the folder was read:
source/fingerprint.py) and, where the source is a git work tree that vouches for the
folder, its tree id in HEAD (source/gitstate.py), a salt covering everything else its
files depend on (appshelf's version, registry.toml as validated, the base URL, the
generators and their templates), the signing key id, its summary (what the shared
files take from it) and its fragments of registry.json and index.json (the bytes the
canonical encoder wrote for it, spliced into the next build's), and each of its output
files under `apps/<key>/` with its token (digest or fingerprint) and its stat key as
written.

The next build reuses an app only when all of these still hold: the same source
(git vouches for the folder and its tree id is the recorded one, or else the same source
entries, one lstat each), the same salt and key, and every output file still as
written (one lstat each). The tree id holds in a fresh clone, where every stat key is
new; where the source root is does not matter (the output does not depend on it). The
output folder is then also the build's `previous`, so published times and immutability
are those of the reused files. Any doubt (a missing
or damaged row, a file touched in the last seconds, a symlink in the folder, a
hand-edited output file) means the app is read and planned again: a record can only
save time. Records are JSON validated by pydantic on use, never unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import pydantic
from pydantic import BaseModel, ConfigDict

from appshelf import __version__
from appshelf.builder.cache import BuildCache
from appshelf.builder.outputs import OutputFile, OutputFiles
from appshelf.builder.plan import AppFragments, AppSummary, RegistryPlan, ReusedApp
from appshelf.formats.boundedjson import loads_bounded
from appshelf.source.fingerprint import current_digest, lines_digest
from appshelf.source.gitstate import GitApps, folders_match
from appshelf.source.models import RegistryConfig
from appshelf.source.tree import SourceTree, UnchangedApp

log = logging.getLogger("appshelf.build")

MEMO_FORMAT = 7  # bump when what a record means changes (3: icons checked by content,
# 4: an icon named by app.toml is published under that name, 5: content-addressed copies,
# 6: git tree ids; the source root is no longer part of the salt, 7: index fragments)


class AppRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    salt: str
    key_id: str
    versions: int
    dependencies: list[tuple[str, str]]
    summary: AppSummary
    # Names joined by newlines and one digest of their stat keys, not a list of keys:
    # validating ~60 small tuples per app cost more than the rest of a no-op build.
    source_names: str  # entries of the app folder (source/fingerprint.py)
    source_digest: str  # "" when stat could not vouch for them (recent, a symlink)
    source_tree: str  # the folder's git tree id in HEAD, "" when git did not vouch for it
    output_names: str  # its output files (all under apps/<key>/)
    output_digest: str
    pinned: dict[str, tuple[str, int]]  # app.json, versions.json -> (sha256, size)
    # The app's canonical bytes in registry.json (none for a template) and index.json.
    flows_fragment: str | None
    index_fragment: str

    def fragments(self) -> AppFragments | None:
        """The fragments, when each is one JSON object, the index entry is this app's, and
        registry.json's is there exactly when the app is no template. A record is input
        like any other: a bad fragment would break, or add to, the files it is spliced
        into. (These checks catch damage, not a forger: whoever can write the cache can
        write the output files it vouches for.)"""
        flows, entry = self.flows_fragment, _object(self.index_fragment)
        if entry is None or entry.get("key") != self.summary.key:
            return None
        if (flows is None) != (self.summary.index.kind is not None):
            return None
        if flows is not None and _object(flows) is None:
            return None
        try:
            return AppFragments(_bytes(flows), self.index_fragment.encode())
        except UnicodeEncodeError:  # a lone surrogate
            return None


@runtime_checkable
class MemoizableGenerator(Protocol):
    """A `BuildOptions.generators` entry whose per-app pages may be reused: `memo_salt`
    digests everything besides the app's own data that they depend on (templates,
    options). A generator without it turns reuse off."""

    def __call__(self, plan: RegistryPlan) -> OutputFiles: ...

    def memo_salt(self, root: Path, config: RegistryConfig) -> str: ...


def build_salt(root: Path, config: RegistryConfig, generator_salts: Sequence[str]) -> str:
    """Everything besides the app folder that an app's output files depend on."""
    parts = [MEMO_FORMAT, __version__, config.model_dump_json(), *generator_salts]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _all_below(lines: str, count: int, prefix: str) -> bool:
    """Whether each of the `count` newline-separated names in `lines` starts with `prefix`
    and has no ".." component (string searches, not a loop over ~46 names an app)."""
    return ("\n" + lines).count("\n" + prefix) == count and "/../" not in (
        "/" + lines.replace("\n", "/") + "/"
    )


@dataclass
class AppMemo:
    """The `AppReuse` of source/tree.py, backed by the build cache's `apps` table."""

    cache: BuildCache
    output: Path
    root: Path
    generators: Sequence[MemoizableGenerator]
    git: GitApps | None = None  # what git vouches for (source/gitstate.py), if anything
    reused: dict[str, tuple[AppRecord, ReusedApp]] = field(default_factory=dict)
    enabled: bool = True
    _rows: dict[str, bytes] | None = None
    _salt: tuple[str, str] | None = None  # (config JSON, salt)

    def _salt_for(self, config: RegistryConfig) -> str:
        text = config.model_dump_json()
        if self._salt is None or self._salt[0] != text:
            salts = [g.memo_salt(self.root, config) for g in self.generators]
            self._salt = (text, build_salt(self.root, config, salts))
        return self._salt[1]

    def unchanged_apps(
        self, config: RegistryConfig, folders: list[Path]
    ) -> dict[Path, UnchangedApp]:
        if not self.enabled:
            return {}
        rows = self._known_rows()
        salt = self._salt_for(config)
        found: dict[Path, UnchangedApp] = {}
        # One thread: the stat calls are served from the dentry cache, so the Python
        # around them dominates, and threads only fight over the GIL (measured).
        for folder in folders:
            record, why = self._candidate(rows.get(folder.name), salt, folder.name)
            if record is not None:
                why = self._intact(folder, record)
            fragments = None
            if record is not None and not why.startswith("not reused"):
                fragments = record.fragments()
                if fragments is None:
                    why = "not reused (its stored index fragments are damaged)"
            if record is None or fragments is None:
                log.debug("app %s: %s", folder.name, why)
                continue
            log.debug("app %s: reused (%s)", folder.name, why)
            # Digest and size only: the snapshot pins them; the files stay as they are.
            pinned = {path: OutputFile(sha, size) for path, (sha, size) in record.pinned.items()}
            paths = record.output_names.split("\n")
            reused = ReusedApp(record.summary, pinned, paths, fragments)
            self.reused[folder.name] = (record, reused)
            found[folder] = UnchangedApp(
                folder.name, folder, record.versions, tuple((d, v) for d, v in record.dependencies)
            )
        return found

    @staticmethod
    def _candidate(raw: bytes | None, salt: str, key: str) -> tuple[AppRecord | None, str]:
        """The app's record when it was made under this build's salt, else why not."""
        if raw is None:
            return None, "read (no record of an earlier build)"
        try:
            record = AppRecord.model_validate_json(raw)
        except pydantic.ValidationError:
            return None, "read (its record is damaged or of another format)"
        if record.salt != salt:
            return None, "read (appshelf, registry.toml, the options or the theme changed)"
        if record.summary.key != key:
            return None, "read (its record is of another app)"
        return record, ""

    def _intact(self, folder: Path, record: AppRecord) -> str:
        """How the source folder, and every output file of the app, are known to be as
        recorded, or "not reused (why)" (a record naming files of another app is simply
        not a match)."""
        prefix = f"apps/{folder.name}/"
        raw = record.output_names
        names = raw.split("\n")
        expected = {f"{prefix}app.json", f"{prefix}versions.json"}
        if set(record.pinned) != expected or not expected <= set(names):
            return "not reused (its record lists other files)"
        if not _all_below(raw, len(names), prefix):
            return "not reused (its record lists other files)"
        how = self._same_source(folder, record)
        if how is None:
            return "not reused (its source folder changed)"
        if current_digest(self.output, names) != record.output_digest:
            return "not reused (one of its output files is not as written)"
        return how

    def _same_source(self, folder: Path, record: AppRecord) -> str | None:
        """ "git tree" or "stat keys" when the folder is as recorded, else None."""
        git = self.git
        if git is not None and record.source_tree:
            tree = git.trees.get(folder.name)
            if tree == record.source_tree and folders_match(folder, git.folders[folder.name]):
                return "git tree unchanged"
            if tree is None:
                why = git.refused.get(folder.name, "not in HEAD")
                log.debug("app %s: git does not vouch for it: %s", folder.name, why)
        if record.source_digest:
            source = record.source_names.split("\n")
            if current_digest(folder, source) == record.source_digest:
                return "stat keys unchanged"
        return None

    def gone_apps(self, tree: SourceTree) -> list[str]:
        """Apps recorded by an earlier build that are no longer in the source."""
        present = set(tree.app_keys)
        return sorted(set(self._known_rows()) - present)

    def _known_rows(self) -> dict[str, bytes]:
        if self._rows is None:
            self._rows = self.cache.load_apps()
        return self._rows

    def forget_all(self) -> None:
        """The signing key changed: nothing may be reused (apps are still fingerprinted,
        so this build's records are stored for the next one)."""
        self.reused.clear()
        self.enabled = False

    def store(
        self,
        config: RegistryConfig,
        plan: RegistryPlan,
        key_id: str,
        written: dict[str, bytes],
    ) -> None:
        """Record every app this build planned in full, with the stat keys of its output
        files as written (`written`: stat lines); drop the records of apps that are gone."""
        salt = self._salt_for(config)
        summaries = {summary.key: summary for summary in plan.summaries}
        planned = {app.key for app in plan.finished}
        by_app = _written_by_app(plan, planned, written)
        trees = self.git.trees if self.git is not None else {}
        rows: list[tuple[str, bytes]] = []
        for app in plan.finished:
            key, entries, files = app.key, app.entries, by_app.get(app.key)
            if (entries is None and key not in trees) or files is None:
                log.debug("app %s: no record kept (not vouched for by stat or git)", key)
                continue
            outputs = sorted(files.items())
            pinned = {
                path: (plan.files[path].sha256, plan.files[path].size)
                for path in (f"apps/{key}/app.json", f"apps/{key}/versions.json")
            }
            record = AppRecord(
                salt=salt,
                key_id=key_id,
                versions=len(app.versions),
                dependencies=list(app.dependencies),
                summary=summaries[key],
                source_names=entries.names if entries is not None else "",
                source_digest=entries.digest if entries is not None else "",
                source_tree=trees.get(key, ""),
                output_names="\n".join(path for path, _ in outputs),
                output_digest=lines_digest(line for _, line in outputs),
                pinned=pinned,
                flows_fragment=_text(plan.fragments[key].flows),
                index_fragment=plan.fragments[key].index.decode(),
            )
            rows.append((key, record.model_dump_json().encode()))
        gone = set(self._known_rows()) - set(summaries)
        self.cache.forget("apps", [*sorted(gone), *sorted(planned - set(dict(rows)))])
        self.cache.store_apps(rows)


def _object(text: str) -> dict[str, object] | None:
    """One JSON object, nothing around it (canonical bytes have no spaces outside strings),
    parsed with the same bounds as any other input (a cache row may be hostile: a deeply
    nested fragment must be a miss, not a RecursionError)."""
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = loads_bounded(text.encode())
    except (ValueError, UnicodeEncodeError):
        return None
    return value if isinstance(value, dict) else None


def _text(fragment: bytes | None) -> str | None:
    return fragment.decode() if fragment is not None else None


def _bytes(fragment: str | None) -> bytes | None:
    return fragment.encode() if fragment is not None else None


def _written_by_app(
    plan: RegistryPlan, planned: set[str], written: dict[str, bytes]
) -> dict[str, dict[str, bytes] | None]:
    """The output files of each planned app with their stat keys as written; None for an
    app with a file not known as written (never reused)."""
    by_app: dict[str, dict[str, bytes] | None] = {key: {} for key in planned}
    for path in plan.files:
        if path.startswith("apps/"):
            key = path.split("/", 2)[1]
            files = by_app.get(key)
            if files is not None:
                stat = written.get(path)
                if stat is None:
                    by_app[key] = None
                else:
                    files[path] = stat
    return by_app
