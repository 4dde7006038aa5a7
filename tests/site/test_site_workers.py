"""App pages rendered in worker processes (site/workers.py): the same bytes as one process."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from site_support import build_site, build_with_lifecycle
from worker_states import FailsInWorkers

import appshelf.site.generator as generator
import appshelf.site.workers as workers
from appshelf.cli import main
from appshelf.errors import SiteBuildError
from appshelf.site import site_generator

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import generate


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Workers for any number of apps, from the first page, in batches of 2; returns a
    list that counts the pools started (the process path was taken)."""
    started: list[int] = []
    monkeypatch.setattr(generator, "MIN_APPS", 1)
    monkeypatch.setattr(workers, "WARMUP", 0)
    monkeypatch.setattr(workers, "BATCH", 2)
    start = workers.PagePool._start

    def counted(self: workers.PagePool) -> None:
        started.append(1)
        start(self)

    monkeypatch.setattr(workers.PagePool, "_start", counted)
    return started


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_generated_tree_same_bytes_with_two_workers(tmp_path: Path, pooled: list[int]) -> None:
    source = tmp_path / "tree"
    generate.generate_small(source, 30, 2, seed=1)
    build_site(source, tmp_path / "one", generators=(site_generator(jobs=1),))
    assert not pooled
    build_site(source, tmp_path / "two", generators=(site_generator(jobs=2),))
    assert pooled
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert sorted(one) == sorted(two)
    assert [p for p in one if one[p] != two[p]] == []
    assert any(p.startswith("apps/") and p.endswith("/index.html") for p in one)


def test_takedown_pages_same_bytes_with_two_workers(
    example_source: Path, tmp_path: Path, pooled: list[int]
) -> None:
    second = tmp_path / "second"  # build_with_lifecycle edits its source
    shutil.copytree(example_source, second)
    build_with_lifecycle(example_source, tmp_path / "one", generators=(site_generator(jobs=1),))
    build_with_lifecycle(second, tmp_path / "two", generators=(site_generator(jobs=2),))
    assert pooled
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert any("takedown" in data.decode("utf-8", "replace") for data in one.values())
    assert sorted(one) == sorted(two)
    assert [p for p in one if one[p] != two[p]] == []


def _broken_app_template(source: Path) -> None:
    (source / "theme").mkdir()
    (source / "theme" / "app.html").write_text("{{ app.no_such_field }}\n")
    registry = source / "registry.toml"
    registry.write_text(registry.read_text() + '\n[site]\noverrides = "theme"\n')


def test_template_error_in_a_worker_is_the_same_error(
    example_source: Path, tmp_path: Path, pooled: list[int]
) -> None:
    _broken_app_template(example_source)
    messages = []
    for jobs in (1, 2):
        with pytest.raises(SiteBuildError) as caught:
            build_site(
                example_source, tmp_path / f"out{jobs}", generators=(site_generator(jobs=jobs),)
            )
        messages.append(str(caught.value))
        assert caught.value.__cause__ is None
    assert pooled
    assert messages[0] == messages[1]
    assert "template app.html (for apps/" in messages[0] and "no_such_field" in messages[0]


def test_cli_site_jobs_error_has_no_traceback(
    example_source: Path, tmp_path: Path, pooled: list[int]
) -> None:
    _broken_app_template(example_source)
    args = ["build", str(example_source), "-o", str(tmp_path / "out"), "--site-jobs", "2"]
    result = CliRunner().invoke(main, args, env={"SOURCE_DATE_EPOCH": "1767225600"})
    assert result.exit_code == 1, result.output
    assert pooled
    assert "template app.html" in result.output and "Traceback" not in result.output


def test_cli_site_jobs_must_be_positive(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["build", str(tmp_path), "--site-jobs", "0"])
    assert result.exit_code == 2 and "--site-jobs" in result.output


def test_a_workers_unexpected_exception_renders_the_page_here() -> None:
    """Not a traceback from another process: the page is rendered in this one instead."""
    state = FailsInWorkers(os.getpid())
    pool = workers.PagePool(
        state, 2, lambda page: state.render(state.environment(), "", page.path, "", {}), warmup=0
    )
    paths = [f"apps/app-{n:02d}/index.html" for n in range(12)]
    for path in paths:
        pool.add(workers.Page("app.html", path, "../..", {}))
    assert [pool.render(path) for path in paths] == [path.encode() for path in paths]
