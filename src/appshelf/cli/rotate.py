"""`appshelf rotate-key`: hand signing over to a new key with a statement both keys sign."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from appshelf.errors import SigningKeyError
from appshelf.formats.canonical import format_timestamp
from appshelf.signing.keys import load_key_file
from appshelf.signing.releaselog import make_rotation
from appshelf.source.rotations import ROTATIONS_DIR
from appshelf.source.tree import read_registry_config


@click.command("rotate-key")
@click.argument("source", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option(
    "--old-key-file",
    type=click.Path(path_type=Path),
    required=True,
    help="The registry's current signing key.",
)
@click.option(
    "--new-key-file",
    type=click.Path(path_type=Path),
    required=True,
    help="The key to sign with from now on (`appshelf keygen` makes one).",
)
def command(source: Path, old_key_file: Path, new_key_file: Path) -> None:
    """Write keys/rotate-<key id>.json: the current key hands signing over to a new one.

    Commit it, then build with the new key: the build logs the rotation (signed by both
    keys) and from then on refuses the old key. Clients keep trusting the registry if they
    trust the old key and follow rotations, or are given the new key."""
    old, new = load_key_file(old_key_file), load_key_file(new_key_file)
    if new.development:
        raise SigningKeyError("the new key is the development key; make one with `appshelf keygen`")
    if old.keyid == new.keyid:
        raise SigningKeyError("the old and the new key are the same key")
    config = read_registry_config(source)
    issued = format_timestamp(datetime.now(UTC).replace(microsecond=0))
    statement = make_rotation(old, new, config.registry.base_url, issued)
    folder = source / ROTATIONS_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"rotate-{new.keyid[:16]}.json"
    path.write_bytes(statement)
    click.echo(f"Wrote {path}: {old.keyid[:16]}... hands signing to {new.keyid[:16]}...")
    click.echo("Commit it, then build with the new key (e.g. APPSHELF_SIGNING_KEY).")
