from pathlib import Path

from conftest import build


def test_example_registry_builds(example_source: Path, tmp_path: Path) -> None:
    report = build(example_source, tmp_path / "out")
    assert report.apps == 5
    assert report.versions == 14
    assert (tmp_path / "out" / "snapshot.json").is_file()
