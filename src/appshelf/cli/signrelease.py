"""`appshelf sign-release` and `appshelf change-owners`: the publisher's side.

sign-release runs in the app's own repository: it hashes the artifact (or takes an
external URL with its sha256 and size) and writes statement.json signed by the
publisher's key, which comes from a file or an environment variable as the registry
key does. change-owners writes an owners-change statement into a registry checkout.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import click
import pydantic

from appshelf.builder.pipeline import build_clock
from appshelf.errors import (
    InputFileError,
    PublisherError,
    SigningKeyError,
    StatementError,
)
from appshelf.filehash import hash_file
from appshelf.formats.canonical import format_timestamp
from appshelf.formats.statement import OWNERS_DIR, STATEMENT_FILE, StatementArtifact
from appshelf.inputfile import read_input_file
from appshelf.signing.keys import RegistryKey, select_signing_key
from appshelf.signing.owners import make_owners_change
from appshelf.signing.statement import make_statement
from appshelf.source.models import ARTIFACT_NAME_RE, AppConfig, ReleaseConfig, check_identities
from appshelf.source.tree import MAX_CONFIG_BYTES, read_registry_config

PUBLISHER_KEY_ENV = "APPSHELF_PUBLISHER_KEY"
_DEPENDENCY = re.compile(r"([a-z0-9][a-z0-9_-]{0,63})=(.+)")


def publisher_key(key_file: Path | None) -> RegistryKey:
    """The publisher's key: --key-file, else $APPSHELF_PUBLISHER_KEY; never a default.

    Raises:
        SigningKeyError: neither is given, the key is unreadable, or it is the development key.
    """
    if key_file is None and not os.environ.get(PUBLISHER_KEY_ENV, "").strip():
        raise SigningKeyError(
            f"no publisher key: pass --key-file or set {PUBLISHER_KEY_ENV} "
            "(`appshelf keygen` makes one; the registry lists its public key in publishers/)"
        )
    key = select_signing_key(
        key_file=key_file,
        configured_key_file=None,
        env_var=PUBLISHER_KEY_ENV,
        environ=os.environ,
        expected_keyid=None,
        production=True,
    )
    if key.development:
        raise SigningKeyError(f"{key.origin} is the development key: a publisher needs its own")
    return key


def _release_fields(
    notes_file: Path | None,
    dependency: tuple[str, ...],
    provides: tuple[str, ...],
    requires: tuple[str, ...],
) -> ReleaseConfig:
    """The fields as release.toml would check them (same rules, same messages)."""
    deps: dict[str, str] = {}
    for item in dependency:
        match = _DEPENDENCY.fullmatch(item)
        if match is None:
            raise PublisherError(f"--dependency: expected APP=RANGE, got {item!r}")
        deps[match[1]] = match[2]
    notes = notes_file.read_text(encoding="utf-8") if notes_file is not None else None
    try:
        return ReleaseConfig(
            notes=notes, dependencies=deps, provides=list(provides), requires=list(requires)
        )
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        raise PublisherError(f"{error['loc'][0]}: {error['msg']}") from None


def _artifact(
    artifact: Path | None, url: str | None, sha256: str | None, size: int | None
) -> StatementArtifact:
    if (artifact is None) == (url is None):
        raise PublisherError("give --artifact FILE, or --artifact-url with --sha256 and --size")
    try:
        if artifact is not None:
            if not ARTIFACT_NAME_RE.fullmatch(artifact.name):
                raise PublisherError(f"--artifact: {artifact.name!r} is not a valid file name")
            digest = hash_file(artifact)
            return StatementArtifact(filename=artifact.name, sha256=digest.sha256, size=digest.size)
        assert url is not None
        if sha256 is None or size is None:
            raise PublisherError("--artifact-url needs --sha256 and --size")
        checked = ReleaseConfig(artifact_url=url, sha256=sha256, size=size)
        filename = url.rstrip("/").rsplit("/", 1)[-1]
        return StatementArtifact(
            filename=filename, sha256=sha256, size=size, url=checked.artifact_url
        )
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        raise PublisherError(f"artifact: {error['msg']}") from None
    except OSError as exc:
        raise PublisherError(f"--artifact {artifact}: cannot read ({exc.strerror})") from None


@click.command("sign-release")
@click.option("--registry", "registry", required=True, help="The registry's base_url.")
@click.option("--publisher", required=True, help="Your publisher id in that registry.")
@click.option("--app", "app", required=True, help="The app key.")
@click.option("--version", "version", required=True, help="The SemVer version.")
@click.option(
    "--artifact", type=click.Path(path_type=Path, dir_okay=False), help="The artifact file."
)
@click.option("--artifact-url", help="Or: the artifact's https:// URL (with --sha256, --size).")
@click.option("--sha256", help="With --artifact-url: the artifact's SHA-256 (hex).")
@click.option("--size", type=int, help="With --artifact-url: its size in bytes.")
@click.option(
    "--notes-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Release notes (Markdown).",
)
@click.option("--dependency", multiple=True, help="APP=RANGE, repeatable.")
@click.option("--provides", multiple=True, help="An interface it provides, repeatable.")
@click.option("--requires", multiple=True, help="An interface it requires, repeatable.")
@click.option("--published", help="RFC 3339 UTC time (default: $SOURCE_DATE_EPOCH, else now).")
@click.option("--key-file", type=click.Path(path_type=Path), help=f"Else ${PUBLISHER_KEY_ENV}.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path(STATEMENT_FILE),
    show_default=True,
)
def command(
    registry: str,
    publisher: str,
    app: str,
    version: str,
    artifact: Path | None,
    artifact_url: str | None,
    sha256: str | None,
    size: int | None,
    notes_file: Path | None,
    dependency: tuple[str, ...],
    provides: tuple[str, ...],
    requires: tuple[str, ...],
    published: str | None,
    key_file: Path | None,
    output: Path,
) -> None:
    """Write statement.json: this version, signed with your publisher key.

    Put it in the registry's apps/<app>/<version>/ beside release.toml (which must give
    the same notes, dependencies, provides and requires) and the artifact."""
    key = publisher_key(key_file)
    fields = _release_fields(notes_file, dependency, provides, requires)
    signed = _artifact(artifact, artifact_url, sha256, size)
    when = published or format_timestamp(build_clock(os.environ))
    try:
        data = make_statement(
            registry=registry if registry.endswith("/") else registry + "/",
            publisher=publisher,
            app=app,
            version=version,
            artifact=signed,
            dependencies=dict(sorted(fields.dependencies.items())),
            provides=fields.provides,
            requires=fields.requires,
            notes=fields.notes,
            published=when,
            key=key,
        )
    except StatementError as exc:
        raise PublisherError(str(exc)) from None
    output.write_bytes(data)
    click.echo(f"Wrote {output}: {app} {version} signed by {publisher} (key {key.keyid[:16]}...)")


@click.command("change-owners")
@click.argument("source", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--app", "app", required=True, help="The app key.")
@click.option("--owners", required=True, help="The new owners, comma-separated.")
@click.option("--previous", help="The current owners (default: app.toml's owners).")
@click.option("--signer", required=True, help="Your publisher id: one of the current owners.")
@click.option("--key-file", type=click.Path(path_type=Path), help=f"Else ${PUBLISHER_KEY_ENV}.")
def owners_command(
    source: Path, app: str, owners: str, previous: str | None, signer: str, key_file: Path | None
) -> None:
    """Write owners/<app>-<time>.json: a current owner hands the app to new owners.

    Commit it with app.toml's new `owners`; the build logs the change."""
    key = publisher_key(key_file)
    config = read_registry_config(source)
    new = _ids("--owners", owners)
    before = _ids("--previous", previous) if previous else _app_owners(source, app)
    issued = format_timestamp(build_clock(os.environ))
    try:
        data = make_owners_change(
            registry=config.registry.base_url,
            app=app,
            previous=before,
            owners=new,
            signer=signer,
            issued=issued,
            key=key,
        )
    except StatementError as exc:
        raise PublisherError(str(exc)) from None
    folder = source / OWNERS_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"{app}-{issued.replace(':', '')}.json"
    path.write_bytes(data)
    click.echo(f"Wrote {path}: {app} from {before} to {new}; now set owners = {new} in app.toml")


def _ids(option: str, text: str) -> list[str]:
    try:
        return check_identities([part.strip() for part in text.split(",") if part.strip()])
    except ValueError as exc:
        raise PublisherError(f"{option}: {exc}") from None


def _app_owners(source: Path, app: str) -> list[str]:
    """app.toml's owners, read as the build reads it (a regular file, size-capped)."""
    path = source / "apps" / app / "app.toml"
    try:
        raw, _, _ = read_input_file(path, MAX_CONFIG_BYTES)
        return list(AppConfig.model_validate(tomllib.loads(raw.decode("utf-8"))).owners)
    except (InputFileError, OSError, ValueError, RecursionError) as exc:
        raise PublisherError(f"{path}: cannot read its owners ({exc}); pass --previous") from None
