"""`appshelf rotate-key`: hand signing over to a new key with a statement both keys sign."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from appshelf.builder.tufrepo import handover_root
from appshelf.errors import InputFileError, SigningKeyError
from appshelf.formats.canonical import format_timestamp
from appshelf.inputfile import read_input_file
from appshelf.signing.keys import RegistryKey, load_key_file
from appshelf.signing.releaselog import make_rotation
from appshelf.source.rotations import MAX_TUF_ROOT_BYTES, ROTATIONS_DIR, tuf_handover_path
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
@click.option(
    "--tuf-root",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="With [tuf] enabled: the published tuf/root.json (e.g. _site/tuf/root.json); "
    "writes keys/tuf/<N+1>.root.json, the next TUF root, signed by both keys.",
)
def command(source: Path, old_key_file: Path, new_key_file: Path, tuf_root: Path | None) -> None:
    """Write keys/rotate-<key id>.json: the current key hands signing over to a new one.

    Commit it, then build with the new key: the build logs the rotation (signed by both
    keys) and from then on refuses the old key. Clients keep trusting the registry if they
    trust the old key and follow rotations, or are given the new key. A registry with
    [tuf] enabled also needs --tuf-root, so TUF clients follow the rotation too."""
    old, new = load_key_file(old_key_file), load_key_file(new_key_file)
    if new.development:
        raise SigningKeyError("the new key is the development key; make one with `appshelf keygen`")
    if old.keyid == new.keyid:
        raise SigningKeyError("the old and the new key are the same key")
    config = read_registry_config(source)
    if config.tuf.enabled and tuf_root is None:
        raise SigningKeyError(
            "[tuf] is enabled: pass --tuf-root with the published tuf/root.json (e.g. "
            "_site/tuf/root.json), so the TUF root is handed over to the new key too"
        )
    now = datetime.now(UTC).replace(microsecond=0)
    issued = format_timestamp(now)
    statement = make_rotation(old, new, config.registry.base_url, issued)
    lifetime = timedelta(days=config.tuf.root_lifetime_days)
    handover = _tuf_handover(tuf_root, old, new, now + lifetime) if tuf_root else None
    folder = source / ROTATIONS_DIR  # nothing is written before everything is checked
    folder.mkdir(exist_ok=True)
    path = folder / f"rotate-{new.keyid[:16]}.json"
    if handover is not None:
        version, data = handover
        root_path = source / tuf_handover_path(version)
        root_path.parent.mkdir(exist_ok=True)
        root_path.write_bytes(data)
        click.echo(f"Wrote {root_path}: TUF root {version}, signed by the old and the new key")
    path.write_bytes(statement)
    click.echo(f"Wrote {path}: {old.keyid[:16]}... hands signing to {new.keyid[:16]}...")
    click.echo("Commit it, then build with the new key (e.g. APPSHELF_SIGNING_KEY).")


def _tuf_handover(
    tuf_root: Path, old: RegistryKey, new: RegistryKey, expires: datetime
) -> tuple[int, bytes]:
    try:
        current, _, _ = read_input_file(tuf_root, MAX_TUF_ROOT_BYTES, follow_symlinks=True)
    except InputFileError as exc:
        raise SigningKeyError(f"{tuf_root}: {exc}") from None
    return handover_root(current, old, new, expires)
