"""scripts/complexity_gate.py: no function above complexity 15 but those its allow-list
names, at most at their listed complexity, and the list names only functions still above.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import complexity_gate


def _branches(name: str, count: int, indent: str = "") -> str:
    """A function of complexity `count + 1` (one `if` per branch)."""
    lines = [f"{indent}def {name}(x):"]
    lines += [f"{indent}    if x == {i}:\n{indent}        return {i}" for i in range(count)]
    lines.append(f"{indent}    return -1\n")
    return "\n".join(lines)


def _gate(tmp_path: Path, allow: str, *paths: Path) -> int:
    allow_file = tmp_path / "allow.txt"
    allow_file.write_text(allow)
    return complexity_gate.main(["--allow", str(allow_file), *map(str, paths)])


def test_a_simple_function_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = tmp_path / "simple.py"
    module.write_text(_branches("fine", 14))  # complexity 15: at the limit
    assert _gate(tmp_path, "", module) == 0
    assert capsys.readouterr().err == ""


def test_a_complex_function_fails_naming_file_line_name_and_complexity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = tmp_path / "complex.py"
    module.write_text("import os\n\n\n" + _branches("tangled", 15))  # complexity 16
    assert _gate(tmp_path, "", module) == 1
    assert f"{module.as_posix()}:4:tangled:16: above 15" in capsys.readouterr().err


def test_methods_and_closures_count_on_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = tmp_path / "nested.py"
    closure = _branches("inner", 16, indent="    ")
    module.write_text(
        f"class Store:\n{_branches('put', 20, indent='    ')}\n\n"
        f"def outer():\n{closure}\n    return inner\n"
    )
    assert _gate(tmp_path, "", tmp_path) == 1  # a folder: its .py files
    err = capsys.readouterr().err
    assert f"{module.as_posix()}:2:Store.put:21: above 15" in err
    assert ":outer.inner:17: above 15" in err
    assert ":outer:" not in err  # a closure's branches are not its parent's


def test_the_allow_list_lets_a_listed_function_stay_but_not_grow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = tmp_path / "legacy.py"
    module.write_text(_branches("old", 19))  # complexity 20
    listed = f"# still to split\n{module.as_posix()} old 20  # was 34\n"
    assert _gate(tmp_path, listed, module) == 0
    module.write_text(_branches("old", 20))  # it grew to 21
    assert _gate(tmp_path, listed, module) == 1
    assert "legacy.py:1:old:21: rose above its allow-listed 20" in capsys.readouterr().err


def test_the_allow_list_must_shrink_when_a_function_is_fixed_or_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = tmp_path / "fixed.py"
    module.write_text(_branches("split_up", 3))
    listed = f"{module.as_posix()} split_up 20\n{module.as_posix()} removed 18\n"
    assert _gate(tmp_path, listed, module) == 1
    err = capsys.readouterr().err
    assert f"{module.as_posix()}:split_up: allow-listed but not above 15" in err
    assert f"{module.as_posix()}:removed: allow-listed but not above 15 (or gone)" in err


@pytest.mark.parametrize(
    ("allow", "message"),
    [("a.py f\n", "allow.txt:1: expected `path name complexity`"), ("a f 3\na f 4\n", "twice")],
)
def test_a_malformed_allow_list_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], allow: str, message: str
) -> None:
    module = tmp_path / "ok.py"
    module.write_text(_branches("fine", 1))
    assert _gate(tmp_path, allow, module) == 1
    assert message in capsys.readouterr().err


def test_unparsable_python_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = tmp_path / "broken.py"
    module.write_text("def f(:\n")
    assert _gate(tmp_path, "", module) == 1
    assert f"complexity gate: {module.as_posix()}: radon cannot parse it" in capsys.readouterr().err


def test_paths_inside_the_repository_are_named_from_its_root() -> None:
    measured = complexity_gate.measure(REPO_ROOT / "scripts" / "complexity_gate.py")
    assert {m.path for m in measured} == {"scripts/complexity_gate.py"}
    assert "main" in {m.name for m in measured}
