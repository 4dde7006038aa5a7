"""Publishers for tests: keys, publishers/*.toml, owners in app.toml, signed versions.

Statements are written with the real `appshelf sign-release` command, from the same
release.toml fields a publisher would pass it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner

from appshelf.cli import main
from appshelf.signing.keys import RegistryKey, write_new_key_file


def new_key(folder: Path, name: str) -> tuple[Path, RegistryKey]:
    path = folder / f"{name}.key"
    return path, write_new_key_file(path)


def declare(source: Path, publisher: str, keys: list[tuple[RegistryKey, str]]) -> None:
    """publishers/<id>.toml with each (key, status)."""
    lines = [f'name = "{publisher.title()} Example"']
    for key, status in keys:
        lines += ["[[keys]]", f'public = "{key.public_hex}"', f'status = "{status}"']
    (source / "publishers").mkdir(exist_ok=True)
    (source / "publishers" / f"{publisher}.toml").write_text("\n".join(lines) + "\n")


def set_owners(source: Path, app: str, owners: list[str]) -> None:
    path = source / "apps" / app / "app.toml"
    kept = [line for line in path.read_text().splitlines() if not line.startswith("owners =")]
    listed = ", ".join(f'"{o}"' for o in owners)
    path.write_text("\n".join([f"owners = [{listed}]", *kept]) + "\n")


def new_version(source: Path, app: str, version: str, release: str = "") -> Path:
    folder = source / "apps" / app / version
    folder.mkdir()
    (folder / f"{app}-{version}.tar.gz").write_bytes(f"{app} {version} bytes".encode())
    (folder / "release.toml").write_text(release)
    return folder


def sign(
    folder: Path, registry: str, publisher: str, key_file: Path, *extra: str
) -> tuple[int, str]:
    """Run `appshelf sign-release` for the version folder; return exit code and output."""
    release = tomllib.loads((folder / "release.toml").read_text())
    app, version = folder.parent.name, folder.name
    args = ["sign-release", "--registry", registry, "--publisher", publisher]
    args += ["--app", app, "--version", version, "--key-file", str(key_file)]
    artifact = [p for p in folder.iterdir() if p.name not in ("release.toml", "statement.json")]
    args += ["--artifact", str(artifact[0]), "-o", str(folder / "statement.json")]
    if "published" in release:
        args += ["--published", release["published"].strftime("%Y-%m-%dT%H:%M:%SZ")]
    if "notes" in release:
        notes = folder.parent / f".notes-{version}"
        notes.write_text(release["notes"])
        args += ["--notes-file", str(notes)]
    for item in release.get("provides", []):
        args += ["--provides", item]
    for item in release.get("requires", []):
        args += ["--requires", item]
    for dep, spec in release.get("dependencies", {}).items():
        args += ["--dependency", f"{dep}={spec}"]
    result = CliRunner().invoke(main, [*args, *extra], env={"SOURCE_DATE_EPOCH": "1768478400"})
    return result.exit_code, result.output
