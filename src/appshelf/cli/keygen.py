"""`appshelf keygen`: create a signing key file (mode 0600) and show its public half."""

from __future__ import annotations

import json
from pathlib import Path

import click

from appshelf.signing.keys import RegistryKey, load_key_file, write_new_key_file


@click.command("keygen")
@click.option(
    "-o",
    "--output",
    "path",
    type=click.Path(path_type=Path),
    default=Path("registry.key"),
    show_default=True,
    help="Where to write the private key (never inside the output folder).",
)
@click.option(
    "--public",
    "public_of",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="KEYFILE",
    help="Write nothing: print the public key and key id of an existing KEYFILE "
    "(like ssh-keygen -y).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the public key as JSON.")
def command(path: Path, public_of: Path | None, as_json: bool) -> None:
    """Generate an Ed25519 registry signing key (or show the public half of one)."""
    if public_of is not None:
        _show(load_key_file(public_of), public_of, as_json)
        return
    key = write_new_key_file(path)
    if as_json:
        _show(key, path, as_json)
        return
    click.echo(f"Wrote private key to {path} (mode 0600). Keep it secret; back it up.")
    _show(key, path, as_json)
    click.echo(
        "Set [signing] key_id in registry.toml to the key id, and give clients the public key."
    )
    click.echo(
        "For CI, store the file's contents in a secret and expose it as APPSHELF_SIGNING_KEY."
    )


def _show(key: RegistryKey, path: Path, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"path": str(path), "keyid": key.keyid, "public": key.public_hex}))
        return
    click.echo(f"public key: {key.public_hex}")
    click.echo(f"key id:     {key.keyid}")
