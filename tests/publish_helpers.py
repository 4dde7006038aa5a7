"""A small registry source with publishers and owners, and releases signed for it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from appshelf.formats.statement import StatementArtifact
from appshelf.signing.keys import RegistryKey, write_new_key_file
from appshelf.signing.statement import make_statement


@dataclass
class Publisher:
    id: str
    key: RegistryKey
    key_file: Path


def make_registry(root: Path, base_url: str, work: Path) -> dict[str, Publisher]:
    """registry.toml, publishers acme and other, apps kv (owned by acme) and notes (other)."""
    root.mkdir(parents=True)
    (root / "registry.toml").write_text(
        f'[registry]\nname = "Test registry"\nbase_url = "{base_url}"\n'
    )
    publishers: dict[str, Publisher] = {}
    (root / "publishers").mkdir()
    for pid in ("acme", "other"):
        key_file = work / f"{pid}.key"
        key = write_new_key_file(key_file)
        publishers[pid] = Publisher(pid, key, key_file)
        (root / "publishers" / f"{pid}.toml").write_text(
            f'name = "{pid.title()}"\n\n[[keys]]\npublic = "{key.public_hex}"\n'
        )
    for app, owner in (("kv", "acme"), ("notes", "other")):
        (root / "apps" / app).mkdir(parents=True)
        (root / "apps" / app / "app.toml").write_text(
            f'name = "{app.title()}"\ndescription = "The {app} app"\nowners = ["{owner}"]\n'
        )
    return publishers


def signed_release(
    base_url: str,
    publisher: Publisher,
    app: str,
    version: str,
    artifact: bytes,
    folder: Path,
    url: str | None = None,
) -> tuple[Path, Path | None]:
    """statement.json (and the artifact file, unless external) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    filename = url.rsplit("/", 1)[-1] if url else f"{app}-{version}.txt"
    path = None
    if url is None:
        path = folder / filename
        path.write_bytes(artifact)
    data = make_statement(
        registry=base_url,
        publisher=publisher.id,
        app=app,
        version=version,
        artifact=StatementArtifact(
            filename=filename,
            sha256=hashlib.sha256(artifact).hexdigest(),
            size=len(artifact),
            url=url,
        ),
        dependencies={},
        provides=[f"{app}.api"],
        requires=[],
        notes=f"{app} {version}",
        published="2026-01-02T03:04:05Z",
        key=publisher.key,
    )
    statement = folder / "statement.json"
    statement.write_bytes(data)
    return statement, path
