"""Issue 10's property: whatever a registry goes through (new versions, yanks, unyanks,
deprecations with a replacement, key rotations, takedowns, plain rebuilds), no logged
release ever changes and every log extends the one before it.

Each step edits a small source tree the way a publisher would and rebuilds through
`build_registry`; after it the new log (read back from the output's tiles, as anyone
could) is checked against the previous one: the same entry bytes at every old index,
and an RFC 9162 consistency proof, built from the new hash tiles, that verifies.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appshelf.builder import BuildOptions, build_registry
from appshelf.formats.log import ReleaseEntry, TileNodes, decode_entry, log_origin
from appshelf.formats.merkle import consistency_proof, verify_consistency
from appshelf.signing.keys import RegistryKey, key_file_text, parse_private_key
from appshelf.signing.note import verify_checkpoint
from appshelf.signing.releaselog import make_rotation
from appshelf.source.lifecycle import record_standing
from conftest import FIXED_NOW
from log_helpers import checkpoint, log_entries, tile_reader

BASE = "http://127.0.0.1:8000/"
APPS = ("alpha", "beta")
REGISTRY_TOML = f'[registry]\nname = "property"\nbase_url = "{BASE}"\n'


@dataclass
class Registry:
    """A source tree, its output and what the test knows it published."""

    root: Path
    key: RegistryKey
    step: int = 0
    versions: dict[str, list[str]] = field(default_factory=lambda: {a: [] for a in APPS})
    published: set[tuple[str, str]] = field(default_factory=set)
    gone: set[tuple[str, str]] = field(default_factory=set)  # taken down
    entries: list[bytes] = field(default_factory=list)
    roots: list[bytes] = field(default_factory=list)  # the log's root after each build

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def output(self) -> Path:
        return self.root / "out"

    def add(self, app: str) -> None:
        version = f"1.{len(self.versions[app])}.0"
        folder = self.source / "apps" / app / version
        folder.mkdir(parents=True)
        (folder / f"{app}-{version}.tar.gz").write_bytes(f"{app} {version}".encode() * 4)
        (folder / "release.toml").write_text(
            f"published = 2025-01-0{len(self.versions[app]) + 1}T00:00:00Z\n"
        )
        self.versions[app].append(version)

    def live(self) -> list[tuple[str, str]]:
        return sorted(self.published - self.gone)

    def rotate(self) -> None:
        new = parse_private_key(bytes(32).hex()[:-4] + f"{self.step:04x}", "test key")
        keys = self.source / "keys"
        keys.mkdir(exist_ok=True)
        (keys / f"rotate-{self.step}.json").write_bytes(
            make_rotation(self.key, new, BASE, "2026-01-15T12:00:00Z")
        )
        self.key = new

    def build(self) -> None:
        environ = {"APPSHELF_SIGNING_KEY": key_file_text(self.key)}
        now = FIXED_NOW + timedelta(hours=self.step)
        build_registry(self.source, self.output, BuildOptions(now=now, environ=environ))
        self.published |= {(a, v) for a, vs in self.versions.items() for v in vs}


def apply(registry: Registry, action: tuple[str, int, int]) -> None:
    """One publisher action; a lifecycle change picks among the live published versions."""
    kind, pick, other = action
    live = registry.live()
    if kind == "add":
        registry.add(APPS[pick % len(APPS)])
    elif kind == "rotate":
        registry.rotate()
    elif kind != "rebuild" and live:
        app, version = live[pick % len(live)]
        reason = f"step {registry.step}"
        if kind == "deprecate":
            others = [v for v in registry.versions[app] if v != version]
            others = [v for v in others if (app, v) not in registry.gone]
            replacement = others[other % len(others)] if others else None
            record_standing(registry.source, app, version, kind, reason, replacement)
        else:
            record_standing(registry.source, app, version, kind, reason)
        if kind == "takedown":
            registry.gone.add((app, version))


def check_extends(registry: Registry) -> None:
    """The new log holds every old entry unchanged and is consistent with the old head."""
    head = checkpoint(registry.output)
    verify_checkpoint(
        (registry.output / "log/checkpoint").read_bytes(),
        registry.key.public_bytes,
        log_origin(BASE),
    )
    entries = log_entries(registry.output)
    old = registry.entries
    assert entries[: len(old)] == old
    for index, data in enumerate(old):
        if isinstance(decode_entry(data), ReleaseEntry):
            assert entries[index] == data
    if old:
        old_root = registry.roots[-1]
        nodes = TileNodes(head.size, tile_reader(registry.output))
        proof = consistency_proof(nodes, len(old), head.size)
        verify_consistency(len(old), old_root, head.size, head.root, proof)
    registry.entries = entries
    registry.roots.append(head.root)


ACTIONS = st.tuples(
    st.sampled_from(["add", "yank", "unyank", "deprecate", "rotate", "takedown", "rebuild"]),
    st.integers(0, 7),
    st.integers(0, 7),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(ACTIONS, min_size=1, max_size=6))
def test_no_logged_release_changes_and_each_log_extends_the_last(
    actions: list[tuple[str, int, int]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="appshelf-logprop-") as work:
        registry = Registry(Path(work), parse_private_key("11" * 32, "test key"))
        (registry.source / "apps").mkdir(parents=True)
        (registry.source / "registry.toml").write_text(REGISTRY_TOML)
        for app in APPS:
            (registry.source / "apps" / app).mkdir()
            (registry.source / "apps" / app / "app.toml").write_text(
                f'name = "{app}"\ndescription = "The {app} app."\n'
            )
            registry.add(app)
        registry.build()
        check_extends(registry)
        for action in actions:
            registry.step += 1
            apply(registry, action)
            registry.build()
            check_extends(registry)
