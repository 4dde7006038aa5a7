"""Unchanged apps are not read, planned, signed or rendered again.

After a build, each app's record in the build cache (`apps` table) holds: the
fingerprint of its source folder (every entry's name and stat key, taken before the
folder was read: source/tree.py `fingerprint_app`), a salt covering everything else its
files depend on (appshelf's version, registry.toml as validated, the base URL, the
generators and their templates), the signing key id, its summary (what the shared
files take from it), and the token (digest or fingerprint) and size of each of its
output files under `apps/<key>/`.

The next build reuses an app only when all of these still hold: same fingerprint, same
salt, same key, the output folder is the one the records describe (it is also the
build's `previous`, so published times and immutability are those of the reused
files), and every one of its output files still has the stat key the writer recorded
for that token. Any doubt (a missing or damaged row, a file touched in the last
seconds, a symlink in the folder, a hand-edited output) means the app is read and
planned again: a record can only save time. Records are JSON validated by pydantic on
use, never unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import pydantic
from pydantic import BaseModel, ConfigDict

from appshelf import __version__
from appshelf.build.cache import BuildCache, Record, stat_key
from appshelf.build.outputs import OutputFile, OutputFiles
from appshelf.build.plan import AppSummary, PlannedApp, RegistryPlan, ReusedApp
from appshelf.build.writer import output_records
from appshelf.source.models import RegistryConfig
from appshelf.source.tree import UnchangedApp

MEMO_FORMAT = 1  # bump when what a record means changes


class AppRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    salt: str
    fingerprint: str
    key_id: str
    versions: int
    dependencies: list[tuple[str, str]]
    summary: AppSummary
    files: dict[str, tuple[str, int]]  # output relpath -> (cache token, size)


@runtime_checkable
class MemoizableGenerator(Protocol):
    """A `BuildOptions.generators` entry whose per-app pages may be reused: `memo_salt`
    digests everything besides the app's own data that they depend on (templates,
    options). A generator without it turns reuse off."""

    def __call__(self, plan: RegistryPlan) -> OutputFiles: ...

    def memo_salt(self, root: Path, config: RegistryConfig) -> str: ...


def build_salt(root: Path, config: RegistryConfig, generator_salts: Sequence[str]) -> str:
    """Everything besides the app folder that an app's output files depend on."""
    parts = [MEMO_FORMAT, __version__, str(root), config.model_dump_json(), *generator_salts]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


@dataclass
class AppMemo:
    """The `AppReuse` of source/tree.py, backed by the build cache."""

    cache: BuildCache
    output: Path
    root: Path
    generators: Sequence[MemoizableGenerator]
    reused: dict[str, tuple[AppRecord, ReusedApp]] = field(default_factory=dict)
    enabled: bool = True
    _rows: dict[str, bytes] | None = None
    _records: dict[str, Record] | None = None
    _salt: tuple[str, str] | None = None  # (config JSON, salt)

    def _salt_for(self, config: RegistryConfig) -> str:
        text = config.model_dump_json()
        if self._salt is None or self._salt[0] != text:
            salts = [g.memo_salt(self.root, config) for g in self.generators]
            self._salt = (text, build_salt(self.root, config, salts))
        return self._salt[1]

    def unchanged(
        self, config: RegistryConfig, key: str, folder: Path, fingerprint: str
    ) -> UnchangedApp | None:
        if not self.enabled:
            return None
        if self._rows is None:
            self._rows = self.cache.load_apps()
            self._records = output_records(self.cache, self.output)
        assert self._records is not None
        raw = self._rows.get(key)
        if raw is None or not self._records:
            return None
        try:
            record = AppRecord.model_validate_json(raw)
        except pydantic.ValidationError:
            return None
        if (
            record.fingerprint != fingerprint
            or record.salt != self._salt_for(config)
            or record.summary.key != key
            or not self._files_intact(key, record.files)
        ):
            return None
        files = {
            path: OutputFile.recorded(token, size) for path, (token, size) in record.files.items()
        }
        self.reused[key] = (record, ReusedApp(record.summary, files))
        return UnchangedApp(
            key, folder, fingerprint, record.versions, tuple((d, v) for d, v in record.dependencies)
        )

    def _files_intact(self, key: str, files: dict[str, tuple[str, int]]) -> bool:
        assert self._records is not None
        prefix = f"apps/{key}/"
        for path, (token, size) in files.items():
            row = self._records.get(path)
            if not path.startswith(prefix) or row is None or row.sha256 != token:
                return False
            try:
                now = stat_key(os.lstat(f"{self.output}/{path}"))
            except OSError:
                return False
            if now != row.key or (size >= 0 and now[0] != size):
                return False
        return True

    def forget_all(self) -> None:
        """The signing key changed: nothing may be reused (apps are still fingerprinted,
        so this build's records are stored for the next one)."""
        self.reused.clear()
        self.enabled = False

    def store(self, config: RegistryConfig, plan: RegistryPlan, key_id: str) -> None:
        """Record every app this build planned in full (after its files were written)."""
        salt = self._salt_for(config)
        by_app: dict[str, OutputFiles] = {}
        for path, planned in plan.files.items():
            if path.startswith("apps/"):
                by_app.setdefault(path.split("/", 2)[1], {})[path] = planned
        summaries = {summary.key: summary for summary in plan.summaries}
        rows: list[tuple[str, bytes]] = []
        for app in plan.apps:
            if app.source.fingerprint is None:
                continue
            files = by_app.get(app.source.key, {})
            record = AppRecord(
                salt=salt,
                fingerprint=app.source.fingerprint,
                key_id=key_id,
                versions=len(app.versions),
                dependencies=_dependencies(app),
                summary=summaries[app.source.key],
                files={path: (f.cache_token, f.size) for path, f in sorted(files.items())},
            )
            rows.append((app.source.key, record.model_dump_json().encode()))
        known = self._rows if self._rows is not None else self.cache.load_apps()
        gone = set(known) - set(summaries)
        self.cache.forget("apps", [*sorted(gone), *(app.source.key for app in plan.apps)])
        self.cache.store_apps(rows)


def _dependencies(app: PlannedApp) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for version in app.versions:
        for dependency in version.source.release.dependencies:
            seen.setdefault(dependency, version.source.version)
    return sorted(seen.items())
