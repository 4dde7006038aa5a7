"""`appshelf init` scaffolds a registry that builds, with a Pages workflow that is valid;
`build --previous-url` starts from a registry served over HTTP (the Pages case)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from appshelf.cli import main
from conftest import REPO_ROOT, StaticServer, build
from deploy.helpers import add_version, replace_artifact


def _workflow(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _uses(workflow: dict[Any, Any]) -> list[str]:
    return [
        step["uses"].split("@")[0]
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if "uses" in step
    ]


def test_init_scaffolds_a_registry_that_builds(tmp_path: Path) -> None:
    target = tmp_path / "my-registry"
    result = CliRunner().invoke(main, ["init", str(target), "--name", "Team apps"])
    assert result.exit_code == 0, result.output
    for relpath in (
        "registry.toml",
        ".gitignore",
        ".github/workflows/publish.yml",
        "apps/hello/app.toml",
        "apps/hello/1.0.0/release.toml",
        "apps/hello/1.0.0/hello-1.0.0.tar.gz",
    ):
        assert (target / relpath).is_file(), relpath
    assert "*.key" in (target / ".gitignore").read_text()
    assert 'name = "Team apps"' in (target / "registry.toml").read_text()
    result = CliRunner().invoke(main, ["build", str(target), "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert (report["apps"], report["versions"]) == (1, 1)
    # The example artifact is reproducible: two scaffolds give the same bytes.
    CliRunner().invoke(main, ["init", str(tmp_path / "again")])
    artifact = "apps/hello/1.0.0/hello-1.0.0.tar.gz"
    assert (target / artifact).read_bytes() == (tmp_path / "again" / artifact).read_bytes()
    # Never over an existing folder.
    result = CliRunner().invoke(main, ["init", str(target)])
    assert result.exit_code == 1 and "not empty (.github, apps, registry.toml)" in result.output
    result = CliRunner().invoke(main, ["init", str(tmp_path / "bad"), "--base-url", "ftp://x"])
    assert result.exit_code == 1 and "must be an http(s):// URL" in result.output
    assert not (tmp_path / "bad").exists()


def test_publish_workflow_has_the_pieces(tmp_path: Path) -> None:
    CliRunner().invoke(main, ["init", str(tmp_path / "r")])
    text = (tmp_path / "r/.github/workflows/publish.yml").read_text()
    workflow = _workflow(tmp_path / "r/.github/workflows/publish.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "push" in triggers and "workflow_dispatch" in triggers
    assert triggers["schedule"][0]["cron"].endswith("* * 1")  # weekly
    assert (
        workflow["concurrency"]["group"] and workflow["concurrency"]["cancel-in-progress"] is False
    )
    uses = _uses(workflow)
    for action in (
        "actions/checkout",
        "actions/configure-pages",
        "actions/upload-pages-artifact",
        "actions/deploy-pages",
    ):
        assert action in uses
    build_step = next(s for s in workflow["jobs"]["build"]["steps"] if s.get("name") == "Build")
    assert build_step["env"]["APPSHELF_SIGNING_KEY"] == "${{ secrets.APPSHELF_SIGNING_KEY }}"
    assert (
        "--resign" in build_step["run"] and "github.event_name == 'schedule'" in build_step["run"]
    )
    assert "--previous-url" in build_step["run"] and "--base-url" in build_step["run"]
    assert workflow["jobs"]["deploy"]["environment"]["name"] == "github-pages"
    assert "@REQUIREMENT@" not in text


def test_project_workflows(tmp_path: Path) -> None:
    pages = _workflow(REPO_ROOT / ".github/workflows/pages.yml")
    assert "actions/upload-pages-artifact" in _uses(pages)
    assert "actions/deploy-pages" in _uses(pages)
    steps = " ".join(str(s.get("run", "")) for s in pages["jobs"]["build"]["steps"])
    assert "appshelf build example-registry" in steps and "--base-url" in steps
    ci = _workflow(REPO_ROOT / ".github/workflows/ci.yml")
    job = ci["jobs"]["test"]
    assert job["runs-on"].startswith("ubuntu")
    assert any("./scripts/test.sh" in str(s.get("run", "")) for s in job["steps"])
    assert any(s.get("with", {}).get("python-version") == "3.11" for s in job["steps"])
    package = ci["jobs"]["package"]
    assert any("./scripts/package-check.sh" in str(s.get("run", "")) for s in package["steps"])


def test_build_previous_url_keeps_published_versions(example_source: Path, tmp_path: Path) -> None:
    live = tmp_path / "live"
    with StaticServer(live) as server:
        build(example_source, live, base_url=server.url)
        before = json.loads((live / "snapshot.json").read_text())["signed"]["version"]
        add_version(example_source, "hello-world", "1.2.0")
        out = tmp_path / "out"
        args = [
            "build",
            str(example_source),
            "-o",
            str(out),
            "--base-url",
            server.url,
            "--previous-url",
            server.url,
            "--json",
        ]
        result = CliRunner(env={"SOURCE_DATE_EPOCH": "1768478400"}).invoke(main, args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output[result.output.index("{") :])
        assert report["snapshot_version"] == before + 1
        # A registry is live there: starting a new history over it is refused.
        refused = CliRunner().invoke(main, [*args, "--new-registry"])
        assert refused.exit_code == 1 and "drop --new-registry" in refused.output
        # A published artifact that changed is caught although `out` never existed.
        replace_artifact(example_source, "kv-store", "1.0.0", b"other bytes")
        shutil.rmtree(out)
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1
        assert "Published versions never change" in result.output
        assert "Traceback" not in result.output
    # Nothing served yet (first publish, or a wrong address): refused unless the user says
    # it is the first publish. A wrong address must never silently restart the history.
    empty = tmp_path / "empty"
    empty.mkdir()
    with StaticServer(empty) as server:
        first = [
            "build",
            str(REPO_ROOT / "example-registry"),
            "-o",
            str(tmp_path / "first"),
            "--previous-url",
            server.url,
        ]
        result = CliRunner().invoke(main, first)
        assert result.exit_code == 1 and "pass --new-registry" in result.output
        assert not (tmp_path / "first").exists()
        result = CliRunner().invoke(main, [*first, "--new-registry"])
        assert result.exit_code == 0, result.output


def test_init_into_a_new_github_repository(tmp_path: Path) -> None:
    """GitHub's most common start: README, LICENSE, .gitignore and .git; nothing is lost."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "README.md").write_text("# My registry\n")
    (repo / "LICENSE").write_text("MIT\n")
    (repo / ".gitignore").write_text("node_modules/\n*.key")  # no final newline
    result = CliRunner().invoke(main, ["init", str(repo)])
    assert result.exit_code == 0, result.output
    assert "Added to" in result.output and "registry.toml" in result.output
    assert "Kept as they were: .git, LICENSE, README.md" in result.output
    assert "Appended to .gitignore: _site/, _previous/, .appshelf-cache/, .appshelf-tmp-*" in (
        result.output
    )
    assert (repo / "README.md").read_text() == "# My registry\n"
    assert (repo / ".gitignore").read_text() == (
        "node_modules/\n*.key\n\n# Added by appshelf init\n_site/\n_previous/\n.appshelf-cache/\n"
        ".appshelf-tmp-*\n.appshelf-journal-*\n.appshelf-lock-*\n.appshelf-old-*\n"
    )
    assert (repo / ".github/workflows/publish.yml").is_file()
    result = CliRunner().invoke(main, ["build", str(repo), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    # Anything else there is refused, and nothing is written.
    other = tmp_path / "other"
    other.mkdir()
    (other / "README").write_text("x")
    (other / "main.py").write_text("x")
    result = CliRunner().invoke(main, ["init", str(other)])
    assert result.exit_code == 1 and "not empty (main.py)" in result.output
    assert sorted(p.name for p in other.iterdir()) == ["README", "main.py"]
    # A .gitignore that is a symlink is not followed.
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / ".gitignore").symlink_to(tmp_path / "elsewhere")
    result = CliRunner().invoke(main, ["init", str(linked)])
    assert result.exit_code == 1 and "not a regular file" in result.output
    assert not (tmp_path / "elsewhere").exists() and not (linked / "registry.toml").exists()
