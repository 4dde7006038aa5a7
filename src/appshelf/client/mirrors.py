"""The ANIP read mirror, verified (docs/spec.md section 15): `mirrors/anip.json` is pinned
by the snapshot and pins every mirror file, so each is checked like an index file."""

from __future__ import annotations

import re

from appshelf.client import trusted as t
from appshelf.client.client import RegistryClient
from appshelf.client.transport import read_all
from appshelf.errors import MalformedError
from appshelf.formats.anip import ANIP_PINS, MirrorPins

# A plain relative path under the mirror's root: no empty, `.` or `..` segment.
_MIRROR_PATH = re.compile(
    r"^registry-api/v1/(?:[A-Za-z0-9][A-Za-z0-9._+-]{0,254}/){0,8}[A-Za-z0-9][A-Za-z0-9._+-]{0,254}\Z"
)


def anip_pins(client: RegistryClient) -> MirrorPins | None:
    """The mirror's pin file, verified; None when the registry has no ANIP mirror.

    Args:
        client: The registry.

    Returns:
        The pins, or None.

    Raises:
        RepositoryError: The snapshot or the pin file fails verification.
        TransportError: A file could not be read.
    """
    if client.snapshot.pin(ANIP_PINS) is None:
        return None
    return t.parse_document(client.snapshot, ANIP_PINS, MirrorPins, client.read_pinned(ANIP_PINS))


def read_mirror_file(client: RegistryClient, pins: MirrorPins, relpath: str) -> bytes:
    """One mirror file, checked against its pin (at most the pinned length is read).

    Args:
        client: The registry.
        pins: Its verified pin file.
        relpath: The file's path, e.g. `registry-api/v1/keys`.

    Returns:
        The bytes.

    Raises:
        MalformedError: The path is not a pinned mirror path.
        RepositoryError: The file differs from its pin.
        TransportError: It could not be read.
    """
    pin = pins.files.get(relpath)
    if pin is None or not _MIRROR_PATH.fullmatch(relpath) or ".." in relpath.split("/"):
        raise MalformedError(f"{relpath}: not a file {ANIP_PINS} pins")
    data = read_all(client.transport, relpath, pin.length, relpath)
    t.check_digest(data, pin, relpath)
    return data
