"""Consistent snapshots in the output folder (docs/spec.md sections 4.1 and 8).

A build killed after any number of its commit's renames leaves a folder that verifies
as the old or the new registry; the previous snapshot's content-addressed copies stay
for one build (so a reader that fetched it just before the commit finds them), and a
no-op build still touches nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

import appshelf.builder.writer as writer_module
from appshelf.client import RegistryClient, trusted_keys
from appshelf.client.verify import verify_registry
from appshelf.formats.consistent import consistent_path, plain_path
from conftest import FIXED_NOW, StaticServer, build
from generations import all_pins, pinned_copies

CLOCK = FIXED_NOW + timedelta(hours=2)
BASE = "http://127.0.0.1:8000/"  # example-registry/registry.toml


class Killed(BaseException):
    """A kill: not an OSError, so nothing in the writer cleans up after it."""


def _verify(
    location: Path | str, state: Path, base: str | None = None
) -> tuple[bool, list[str], int | None]:
    keys = trusted_keys(allow_dev_key=True)
    with RegistryClient(
        location,
        keys,
        allow_dev_key=True,
        state_dir=state,
        clock=lambda: CLOCK,
        expected_registry=base,
    ) as client:
        report = verify_registry(client, artifacts=True)
    return report.ok, report.failures, report.snapshot_version


def _edit(source: Path) -> None:
    """An app edit: its app.json and every manifest are signed again, index.json changes,
    and a new version is added beside it."""
    app_toml = source / "apps/kv-store/app.toml"
    app_toml.write_text(app_toml.read_text().replace('description = "', 'description = "New. ', 1))
    version = source / "apps/kv-store/1.2.0"
    version.mkdir()
    (version / "kv-store-1.2.0.tar.gz").write_bytes(b"new release")


def _renames_into(target: Path, limit: int | None, counted: list[str]):  # type: ignore[no-untyped-def]
    real = os.replace

    def replace(src: object, dst: object, *args: object, **kwargs: object) -> None:
        if Path(os.fsdecode(dst)).is_relative_to(target):  # type: ignore[arg-type]
            if limit is not None and len(counted) >= limit:
                raise Killed(str(dst))
            counted.append(os.fsdecode(dst))  # type: ignore[arg-type]
        real(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    return replace


def test_killed_after_any_rename_of_the_commit_the_folder_verifies(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old"
    build(example_source, old / "out")
    _edit(example_source)
    probe = tmp_path / "probe"
    shutil.copytree(old, probe)
    renames: list[str] = []
    with monkeypatch.context() as patch:
        patch.setattr(writer_module.os, "replace", _renames_into(probe / "out", None, renames))
        build(example_source, probe / "out", now=FIXED_NOW + timedelta(hours=1))
    assert len(renames) > 20  # the commit's renames, snapshot.json last
    assert Path(renames[-1]).name == "snapshot.json"
    for limit in range(len(renames)):
        work = tmp_path / f"kill-{limit}"
        shutil.copytree(old, work)
        out = work / "out"
        with monkeypatch.context() as patch, pytest.raises(Killed):
            patch.setattr(writer_module.os, "replace", _renames_into(out, limit, []))
            build(example_source, out, now=FIXED_NOW + timedelta(hours=1))
        assert (work / ".appshelf-journal-out.json").is_file()  # killed in the commit
        ok, failures, version = _verify(out, work / "state")
        assert ok and version == 1, (limit, failures)  # the old registry, whole
        build(example_source, out, now=FIXED_NOW + timedelta(hours=1))  # rolls forward
        ok, failures, version = _verify(out, work / "state")
        assert ok and version == 2, (limit, failures)
        shutil.rmtree(work)


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_previous_snapshots_copies_stay_one_build(example_source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(example_source, out)
    first = _tree(out)
    first_copies = pinned_copies(first)
    assert first_copies and all(p in first for p in first_copies)
    assert json.loads(first["snapshot.json"])["signed"]["consistent"] is True

    _edit(example_source)
    build(example_source, out, now=FIXED_NOW + timedelta(hours=1))
    second = _tree(out)
    assert first_copies <= set(second)  # a reader holding the first snapshot finds them
    # ...as one that fetched snapshot 1 just before the commit does, over HTTP.
    with StaticServer(tmp_path / "reader") as server:
        shutil.copytree(out, server.root)
        (server.root / "snapshot.json").write_bytes(first["snapshot.json"])
        ok, failures, version = _verify(server.url, tmp_path / "state-reader", BASE)
    assert ok and version == 1, failures

    mtimes = {p: (out / p).stat().st_mtime_ns for p in second}
    report = build(example_source, out, now=FIXED_NOW + timedelta(hours=1))  # a no-op
    assert (report.files_written, report.files_removed, report.changed) == (0, 0, False)
    assert _tree(out) == second and all((out / p).stat().st_mtime_ns == mtimes[p] for p in second)

    (example_source / "apps/kv-store/1.3.0").mkdir()
    (example_source / "apps/kv-store/1.3.0/kv-store-1.3.0.tar.gz").write_bytes(b"third")
    build(example_source, out, now=FIXED_NOW + timedelta(hours=2))
    third = _tree(out)
    second_copies = pinned_copies(second)
    assert second_copies <= set(third)
    gone = first_copies - second_copies - pinned_copies(third)
    assert gone and not gone & set(third)  # pinned by neither snapshot: removed
    ok, failures, _ = _verify(out, tmp_path / "state")
    assert ok, failures


def test_a_copy_is_named_by_the_digest_of_its_bytes(example_source: Path, tmp_path: Path) -> None:
    """`<dir>/<sha256>.<name>`, TUF's naming; the plain files stay for Flows consumers."""
    import hashlib

    out = tmp_path / "out"
    build(example_source, out)
    files = _tree(out)
    meta = all_pins(json.loads(files["snapshot.json"])["signed"], files.get)
    assert any(p.startswith("bins/") for p in meta) and "apps/hello-world/app.json" in meta
    for relpath, pin in meta.items():
        copy = consistent_path(relpath, pin["sha256"])
        assert files[copy] == files[relpath]
        assert hashlib.sha256(files[copy]).hexdigest() == pin["sha256"]
        assert plain_path(copy) == (relpath, pin["sha256"])
    assert consistent_path("apps/hello/app.json", "ab" * 32) == f"apps/hello/{'ab' * 32}.app.json"
    assert consistent_path("registry.json", "ab" * 32) == f"{'ab' * 32}.registry.json"
    assert plain_path("apps/hello/app.json") is None
    assert plain_path(f"apps/hello/{'AB' * 32}.app.json") is None  # lowercase hex only
