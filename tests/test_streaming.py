"""One app at a time (builder/streaming.py): the build hands each app on to the writer as
soon as it is planned, and gives the same bytes as a build that plans every app first
(a generator without `stream`), on the first build, on a rebuild in the same folder, and
with [tuf] on. A build that fails part-way leaves the output and nothing beside it."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import pytest

from appshelf.builder import writer
from appshelf.builder.outputs import OutputFiles
from appshelf.builder.plan import RegistryPlan
from appshelf.builder.writer import Spool
from appshelf.errors import SourceTreeError
from appshelf.site import site_generator
from appshelf.site.generator import SiteGenerator
from conftest import FIXED_NOW, build


class WholePlan:
    """The site, given the whole plan at once: a generator without `stream`."""

    def __init__(self, site: SiteGenerator) -> None:
        self.site = site

    def __call__(self, plan: RegistryPlan) -> OutputFiles:
        return self.site(plan)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def with_tuf(source: Path) -> Path:
    toml = source / "registry.toml"
    toml.write_text(toml.read_text() + "\n[tuf]\nenabled = true\nbins = 16\n")
    return source


def add_version(app: Path) -> None:
    """9.0.0, a copy of the app's first version, published by this build."""
    new = app / "9.0.0"
    shutil.copytree(app / _versions(app)[0], new)
    release = new / "release.toml"
    release.write_text(release.read_text().replace("published", "# published", 1))


def edit(source: Path) -> None:
    """A new version of one app, and a yank of another's."""
    add_version(source / "apps/kv-store")
    lifecycle = source / "apps/hello-world/lifecycle.toml"
    version = _versions(source / "apps/hello-world")[0]
    lifecycle.write_text(f'[versions."{version}"]\nyanked = "superseded"\n')


def _versions(app: Path) -> list[str]:
    return sorted(p.name for p in app.iterdir() if p.is_dir() and p.name[:1].isdigit())


@pytest.mark.parametrize("tuf", [False, True], ids=["plain", "tuf"])
def test_streamed_and_whole_plan_builds_give_the_same_bytes(
    example_source: Path, tmp_path: Path, tuf: bool
) -> None:
    source = with_tuf(example_source) if tuf else example_source
    streamed, whole = tmp_path / "streamed", tmp_path / "whole"
    site = site_generator(jobs=1)
    build(source, streamed, generators=(site,))
    build(source, whole, generators=(WholePlan(site),))
    assert files(streamed) == files(whole)

    edit(source)
    later = FIXED_NOW + timedelta(hours=1)
    build(source, streamed, generators=(site,), now=later)
    build(source, whole, generators=(WholePlan(site),), now=later)
    assert files(streamed) == files(whole)


def test_the_site_build_hands_each_app_on_as_it_is_planned(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each app reaches the writer in its own batch, with its pages, before the shared
    files; the plan keeps no app in full."""
    batches: list[set[str]] = []
    real_add = Spool.add

    def add(self: Spool, files: OutputFiles, paths: Iterable[str]) -> None:
        paths = list(paths)
        batches.append(set(paths))
        real_add(self, files, paths)

    monkeypatch.setattr(Spool, "add", add)
    report = build(example_source, tmp_path / "out", generators=(site_generator(jobs=1),))
    apps = sorted(p.name for p in (example_source / "apps").iterdir() if p.is_dir())
    assert len(batches) == report.apps + 1  # one per app, then the rest
    for key, batch in zip(apps, batches, strict=False):
        assert {path.split("/")[1] for path in batch} == {key}
        assert f"apps/{key}/index.html" in batch and f"apps/{key}/app.json" in batch
    assert "index.html" in batches[-1] and "snapshot.json" in batches[-1]


def test_a_problem_in_a_later_app_leaves_the_output_and_nothing_beside_it(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first app is staged, changed, before the last one is found broken: the build
    fails, the output is as it was, and its staging folder is gone."""
    monkeypatch.setattr(writer, "_STAGE_BATCH", 1)  # each app staged as it is handed on
    staged: list[int] = []
    real_settle = Spool._settle

    def settle(self: Spool, files: OutputFiles, paths: list[str]) -> None:
        real_settle(self, files, paths)
        staged.append(len(self.staged))

    monkeypatch.setattr(Spool, "_settle", settle)
    out = tmp_path / "out"
    site = (site_generator(jobs=1),)
    build(example_source, out, generators=site)
    before = files(out)
    apps = sorted(p for p in (example_source / "apps").iterdir() if p.is_dir())
    first, last = apps[0], apps[-1]
    add_version(first)
    shutil.rmtree(last / _versions(last)[0])  # a published version removed: refused
    staged.clear()
    with pytest.raises(SourceTreeError, match="missing from the source"):
        build(example_source, out, generators=site, now=FIXED_NOW + timedelta(hours=1))
    assert staged[0] > 0  # the first app's new files were staged before the failure
    assert files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".appshelf-tmp")) == []


@pytest.mark.parametrize("swap", ["link", "fifo", "gone", "folder"])
def test_a_page_read_back_from_the_output_is_read_safely(tmp_path: Path, swap: str) -> None:
    """An unchanged page is never rendered: if anything asks for its bytes later, they
    are read from the output, as any output file is: a link, a FIFO, a folder or a
    missing file is an OutputError (no hang, nothing followed)."""
    import os

    from appshelf.builder.outputs import OutputFile
    from appshelf.builder.previous import FolderSource
    from appshelf.errors import OutputError

    out = tmp_path / "out"
    (out / "apps/a").mkdir(parents=True)
    page = out / "apps/a/index.html"
    page.write_bytes(b"<p>as written</p>\n")
    lazy = OutputFile.lazy("fp", lambda: b"never rendered")
    settled = writer._settled(lazy, FolderSource(out), "apps/a/index.html")
    assert settled.materialize().data == b"<p>as written</p>\n"
    page.unlink()
    if swap == "link":
        (tmp_path / "elsewhere").write_bytes(b"secret")
        page.symlink_to(tmp_path / "elsewhere")
    elif swap == "fifo":
        os.mkfifo(page)
    elif swap == "folder":
        page.mkdir()
    with pytest.raises(OutputError):
        settled.materialize()


def test_streamed_and_whole_plan_builds_agree_from_previous_and_previous_url(
    example_source: Path, tmp_path: Path
) -> None:
    """The published state read from another folder (--previous) or a web host on
    127.0.0.1 (--previous-url): a new version on top of it, streamed or not, gives the
    same bytes."""
    from appshelf.deploy.http import HttpSource
    from conftest import StaticServer

    site = site_generator(jobs=1)
    with StaticServer(tmp_path / "live") as server:
        build(example_source, server.root, generators=(site,), base_url=server.url)
        add_version(example_source / "apps/kv-store")
        later = FIXED_NOW + timedelta(hours=1)
        outputs = {}
        for name, generator in (("streamed", site), ("whole", WholePlan(site))):
            common = {"generators": (generator,), "base_url": server.url, "now": later}
            build(example_source, tmp_path / f"{name}-prev", previous=server.root, **common)
            source = HttpSource(server.url)
            try:
                build(example_source, tmp_path / f"{name}-url", previous_source=source, **common)
            finally:
                source.close()
            outputs[name] = (files(tmp_path / f"{name}-prev"), files(tmp_path / f"{name}-url"))
    assert outputs["streamed"] == outputs["whole"]
    assert "apps/kv-store/9.0.0/manifest.json" in outputs["streamed"][1]


def test_each_app_source_is_let_go_once_it_is_handed_on(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streaming holds one app's source at a time: when the last app is planned, no
    earlier app's source (models, paths, stat keys) is still alive, once its pages are
    staged (here after each app; by default every 4,096 files). The report's counts are
    those of the whole source."""
    import gc
    import weakref

    from appshelf.builder import plan as plan_module

    alive: list[weakref.ref[object]] = []
    held_while_last: list[int] = []
    real_plan_app = plan_module._plan_app
    apps = sorted(p.name for p in (example_source / "apps").iterdir() if p.is_dir())

    def plan_app(ctx: object, app: object) -> object:
        if getattr(app, "key", None) == apps[-1]:
            gc.collect()
            held_while_last.append(sum(ref() is not None for ref in alive))
        alive.append(weakref.ref(app))
        return real_plan_app(ctx, app)  # type: ignore[arg-type]

    monkeypatch.setattr(plan_module, "_plan_app", plan_app)
    monkeypatch.setattr(writer, "_STAGE_BATCH", 1)
    report = build(example_source, tmp_path / "out", generators=(site_generator(jobs=1),))
    assert held_while_last == [0] and len(alive) == len(apps) > 1
    assert report.apps == len(apps)
    assert report.versions == len(list((tmp_path / "out").glob("apps/*/*/manifest.json")))


def test_a_staged_file_keeps_its_digest_only(
    example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once staged, a file's entry holds its digest and size: no bytes, no renderer, and
    (for an artifact, a copy of a source file) no source path, which a build held for
    every version until its end. The files are still written from their source."""
    from appshelf.builder.pipeline import Build

    seen: list[OutputFiles] = []
    real_write = Build.write

    def write(self: Build, plan: RegistryPlan, spool: Spool) -> object:
        stats = real_write(self, plan, spool)
        seen.append(plan.files)
        return stats

    monkeypatch.setattr(Build, "write", write)
    out = tmp_path / "out"
    build(example_source, out, generators=(site_generator(jobs=1),))
    (planned,) = seen
    artifacts = [p for p in planned if p.endswith((".tar.gz", ".zip", ".mpk"))]
    assert artifacts and all((out / p).is_file() for p in artifacts)
    held = [p for p, f in planned.items() if f.source or f.data is not None or f.render]
    assert held == []
