"""benchmarks/run.py's HTTP scenarios at a tiny size: they run end to end and count right.

Nothing here times anything; the figures are the benchmark's business.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

import generate  # noqa: E402
import run  # noqa: E402
import served  # noqa: E402


def test_recording_server_counts_body_and_headers(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_bytes(b"x" * 3000)
    with served.serve(tmp_path) as (url, records):
        with urllib.request.urlopen(url + "a.json") as response:
            assert response.read() == b"x" * 3000
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "missing.json")
    ok, missing = records
    assert (ok.method, ok.path, ok.status, ok.body_bytes) == ("GET", "/a.json", 200, 3000)
    assert ok.wire_bytes > 3000  # status line and headers too
    assert (missing.path, missing.status, missing.body_bytes) == ("/missing.json", 404, 0)


def test_fetch_metadata_separates_the_artifact(tmp_path: Path) -> None:
    source = tmp_path / "small"
    generate.generate_small(source, apps=2, versions=2, seed=1)
    lines = run.fetch_metadata(source, tmp_path, generate.app_key(0))
    text = "\n".join(lines)
    assert "1 artifact response(s)" in text
    assert "GET /snapshot.json" in text
    assert "manifest.json" in text  # by its content-addressed name (docs/spec.md 4.1.1)
    assert ".tar.gz" not in text  # the artifact is not counted as metadata


def test_fresh_clone_builds_from_the_served_output(tmp_path: Path) -> None:
    source, out = tmp_path / "small", tmp_path / "out"
    generate.generate_small(source, apps=2, versions=1, seed=1)
    run.appshelf_build(source, out, ["--no-site"])
    noop, plus = run.fresh_clone_rows(source, out, tmp_path, repeat=1)
    assert (tmp_path / "clone" / ".git").is_dir()
    assert run.git(tmp_path / "clone", "status", "--porcelain") == ""
    assert (tmp_path / "clone" / "apps" / generate.app_key(0) / "98.0.0").is_dir()
    published = (tmp_path / "fresh" / "out" / "apps" / generate.app_key(0) / "98.0.0").is_dir()
    assert published
    assert len(noop.ours) == len(plus.ours) == 1
    assert plus.ours[0].written > 0
    assert "from --previous-url" in noop.note
