"""The published JSON Schemas describe the files the build writes, and reject bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from conftest import build

KIND_GLOBS = {
    "registry": "registry.json",
    "index": "index.json",
    "keys": "keys.json",
    "snapshot": "snapshot.json",
    "versions": "apps/*/versions.json",
    "app": "apps/*/app.json",
    "manifest": "apps/*/*/manifest.json",
}


@pytest.fixture
def site(example_source: Path, tmp_path: Path) -> Path:
    build(example_source, tmp_path / "out")
    return tmp_path / "out"


def _schema(site: Path, kind: str) -> dict[str, object]:
    schema = json.loads((site / "schemas" / f"{kind}.schema.json").read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def test_every_emitted_file_validates_against_its_schema(site: Path) -> None:
    validated = 0
    for kind, pattern in KIND_GLOBS.items():
        schema = _schema(site, kind)
        for path in sorted(site.glob(pattern)):
            jsonschema.validate(json.loads(path.read_bytes()), schema)
            validated += 1
    assert validated == 4 + 5 + 5 + 14


@pytest.mark.parametrize(
    ("kind", "path", "mutate"),
    [
        ("index", "index.json", lambda d: d["apps"][0].update(versions="many")),
        ("registry", "registry.json", lambda d: d["apps"]["kv-store"].update(extra=1)),
        ("snapshot", "snapshot.json", lambda d: d["signed"].update(version=0)),
        (
            "manifest",
            "apps/kv-store/1.0.0/manifest.json",
            lambda d: d["signed"]["artifact"].update(sha256="XYZ"),
        ),
        (
            "versions",
            "apps/kv-store/versions.json",
            lambda d: d["versions"][0].update(artifactChecksum="md5:00"),
        ),
    ],
)
def test_schemas_reject_malformed_files(site: Path, kind: str, path: str, mutate: object) -> None:
    data = json.loads((site / path).read_bytes())
    mutate(data)  # type: ignore[operator]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, _schema(site, kind))


def test_index_omits_empty_lists(site: Path) -> None:
    index = json.loads((site / "index.json").read_bytes())
    hello = next(app for app in index["apps"] if app["key"] == "hello-world")
    assert "provides" not in hello and "requires" not in hello
    kv = next(app for app in index["apps"] if app["key"] == "kv-store")
    assert kv["provides"] == ["storage.kv"]
