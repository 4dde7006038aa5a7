"""Every ```python example in README.md and docs/*.md runs, against a registry signed
with a real key and served on 127.0.0.1. Examples name the registry `REGISTRY_URL` and
its key `PUBLIC_KEY`; the test provides both."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from conftest import REPO_ROOT, StaticServer, build

_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _examples() -> list[tuple[str, str]]:
    found = []
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for number, match in enumerate(_BLOCK.finditer(path.read_text()), 1):
            found.append((f"{path.relative_to(REPO_ROOT)}#{number}", match.group(1)))
    return found


EXAMPLES = _examples()


def test_the_docs_have_examples() -> None:
    assert any(name.startswith("docs/client.md") for name, _ in EXAMPLES)


@pytest.mark.parametrize(("name", "code"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_example_runs(
    name: str, code: str, example_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "registry.key"
    made = json.loads(CliRunner().invoke(main, ["keygen", "-o", str(key_file), "--json"]).output)
    root = tmp_path / "www"
    monkeypatch.setenv("APPSHELF_STATE_DIR", str(tmp_path / "state"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with StaticServer(root) as server:
        build(example_source, root, base_url=server.url, key_file=key_file, now=datetime.now(UTC))
        namespace = {"REGISTRY_URL": server.url, "PUBLIC_KEY": made["public"]}
        exec(compile(code, name, "exec"), namespace)
    if name.startswith("docs/client.md#1"):  # the library example downloads a plan
        assert sorted(p.name for p in (work / "apps").iterdir()) == [
            "http-client-2.0.0.tar.gz",
            "slack-notify-1.1.0.tar.gz",
        ]
