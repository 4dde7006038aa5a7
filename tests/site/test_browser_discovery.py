"""Which browser the browser tests use, and what happens without one: a clear skip on a
developer's machine, a failure in CI (CI=true, as .ci/run runs), never a silent pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from site_support import find_chromium, missing_browser


def test_missing_browser_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="snap install chromium"):
        missing_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI requires the browser tests"):
        missing_browser()


def test_find_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPSHELF_CHROMIUM", str(tmp_path / "missing"))
    assert find_chromium() is None
    monkeypatch.delenv("APPSHELF_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))
    own = tmp_path / "playwright-chrome"
    assert find_chromium(str(own)) is None
    own.write_text("")
    assert find_chromium(str(own)) == str(own)  # Playwright's own download (Ubuntu route)
    (tmp_path / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "chromium").chmod(0o755)
    assert find_chromium(str(own)) == str(tmp_path / "chromium")
