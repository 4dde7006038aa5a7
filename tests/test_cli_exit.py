"""The `appshelf` script ends with a quick exit (appshelf/cli/__init__.py `run`) that must
lose nothing: output flushed, exit handlers run, live threads joined, statuses kept."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appshelf.cli import _exit_status

REPO = Path(__file__).resolve().parent.parent


def _appshelf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appshelf", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_a_build_prints_its_whole_report_and_exits_zero(tmp_path: Path) -> None:
    shutil.copytree(REPO / "example-registry", tmp_path / "src")
    done = _appshelf("build", "src", "-o", "out", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # flushed whole through a pipe
    assert report["files_written"] > 0
    assert (tmp_path / "out" / "snapshot.json").is_file()


def test_a_user_error_still_exits_one_with_its_message(tmp_path: Path) -> None:
    done = _appshelf("build", "no-such-folder", "-o", "out", cwd=tmp_path)
    assert done.returncode != 0
    assert "no-such-folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_exit_handlers_run_and_threads_are_joined(tmp_path: Path) -> None:
    marker, joined = tmp_path / "atexit", tmp_path / "thread"
    code = (
        "import atexit, sys, threading, time\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        f"    open({str(joined)!r}, 'w').write('joined')\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['appshelf', '--version']\n"
        "from appshelf.cli import run\n"
        "run()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "appshelf" in done.stdout
    assert marker.read_text() == "ran"
    assert joined.read_text() == "joined"


def test_exit_handlers_run_on_the_quick_exit(tmp_path: Path) -> None:
    marker = tmp_path / "atexit"
    code = (
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "sys.argv = ['appshelf', 'no-such-command']\n"
        "from appshelf.cli import run\n"
        "run()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2  # click's usage error, kept
    assert "No such command" in done.stderr
    assert marker.read_text() == "ran"


@pytest.mark.parametrize(
    ("code", "status"), [(None, 0), (0, 0), (1, 1), (2, 2), (-1, 255), (256, 0), ("bye", 1)]
)
def test_exit_status_is_the_interpreters(code: object, status: int) -> None:
    assert _exit_status(code) == status
