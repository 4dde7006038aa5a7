"""`appshelf publish`: hand a signed release to a registry, from the app's repository.

Two ways in, one version folder out (docs/spec.md section 11): written into a checkout of
the registry's repository for a pull request, or uploaded to the registry's S3 inbox for
its next `build --deploy`. Neither needs the registry's key.
"""

from __future__ import annotations

from pathlib import Path

import click

from appshelf.cli.deploy import check_endpoint_url
from appshelf.cli.ingest import owner_keys
from appshelf.deploy import ClientOptions, S3Store, S3Target
from appshelf.deploy.inbox import check_signer, publish_to_inbox
from appshelf.errors import AppshelfError, InputFileError, PublishError, StatementError
from appshelf.formats.documents import Signed
from appshelf.formats.statement import MAX_STATEMENT_BYTES, ReleaseStatement
from appshelf.inputfile import read_input_file
from appshelf.signing.statement import read_statement
from appshelf.source.tree import read_registry_config
from appshelf.source.versionfolder import check_names, write_version


def read_statement_file(path: Path) -> tuple[bytes, Signed[ReleaseStatement]]:
    """The statement's bytes and parsed envelope.

    Raises:
        AppshelfError: not a regular file, too large, or not a release statement.
    """
    try:
        data, _, _ = read_input_file(path, MAX_STATEMENT_BYTES)
        return data, read_statement(data, str(path))
    except InputFileError as exc:
        raise AppshelfError(f"{path}: {exc}") from None
    except StatementError as exc:
        raise AppshelfError(str(exc)) from None


def _to_checkout(
    checkout: Path,
    statement: bytes,
    envelope: Signed[ReleaseStatement],
    artifact: Path | None,
    where: str,
) -> None:
    base_url = read_registry_config(checkout).registry.base_url
    if envelope.signed.registry != base_url:
        raise PublishError(
            f"{where}: signed.registry: is {envelope.signed.registry}, but the checkout "
            f"{checkout} is the registry {base_url}"
        )
    check_names(envelope.signed, where)
    try:
        check_signer(envelope, owner_keys(checkout), where)
    except StatementError as exc:
        raise PublishError(f"{exc} (in {checkout})") from None
    written = write_version(checkout, statement, envelope, artifact, where)
    click.echo(f"Wrote {written.folder}: {', '.join(written.files)}")
    click.echo("Next: commit it on a branch and open a pull request against the registry.")


@click.command("publish")
@click.argument("target", metavar="[s3://BUCKET[/PREFIX]]", required=False)
@click.option(
    "--statement",
    type=click.Path(path_type=Path),
    default=Path("statement.json"),
    show_default=True,
    help="The signed release statement (appshelf sign-release).",
)
@click.option(
    "--artifact",
    type=click.Path(path_type=Path),
    help="The artifact file it signs (not for an external artifact URL).",
)
@click.option(
    "--registry-checkout",
    type=click.Path(path_type=Path),
    help="Write apps/<app>/<version>/ into this checkout of the registry's repository.",
)
@click.option("--endpoint-url", help="S3-compatible endpoint (MinIO, SeaweedFS, R2...).")
@click.option("--profile", help="AWS profile (else the standard AWS_* variables).")
@click.option("--region", help="AWS region (else the profile's or AWS_REGION).")
def command(
    target: str | None,
    statement: Path,
    artifact: Path | None,
    registry_checkout: Path | None,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
) -> None:
    """Publish the release STATEMENT signs, into a registry checkout or an S3 inbox."""
    if (target is None) == (registry_checkout is None):
        raise click.UsageError("give either --registry-checkout DIR or s3://BUCKET[/PREFIX]")
    data, envelope = read_statement_file(statement)
    where = str(statement)
    if registry_checkout is not None:
        _to_checkout(registry_checkout, data, envelope, artifact, where)
        return
    assert target is not None
    check_names(envelope.signed, where)
    body = envelope.signed
    if (body.artifact.url is None) != (artifact is not None):
        raise PublishError(
            f"{where}: give --artifact exactly when the statement has no artifact url"
        )
    options = ClientOptions(
        endpoint_url=check_endpoint_url(endpoint_url), profile=profile, region=region, jobs=1
    )
    store = S3Store(S3Target.parse(target), options)
    written = publish_to_inbox(store, data, envelope, artifact)
    click.echo(f"Uploaded {body.app} {body.version} to the inbox of {store.target}:")
    for key in written:
        click.echo(f"  {key}")
    click.echo("The registry's next `appshelf build --deploy` verifies and publishes it.")
