"""Which certificate authorities the client trusts for https registries.

In order: an explicit CA file (`--ca-file`, or `APPSHELF_CA_FILE`), requests' own
`REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE`, OpenSSL's `SSL_CERT_FILE`, and otherwise the
operating system's trust store through `truststore` (as pip does), so a company CA
installed on the machine works without configuration. A CA file replaces the
defaults; it does not add to them.
"""

from __future__ import annotations

import os
import ssl
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import truststore

from appshelf.errors import ClientUsageError

CA_FILE_ENV = "APPSHELF_CA_FILE"
CA_ENV_VARS = (CA_FILE_ENV, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@dataclass(frozen=True)
class CaTrust:
    context: ssl.SSLContext
    source: str  # for error messages: "the system trust store", "--ca-file x.pem"...


def tls_trust(
    ca_file: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> CaTrust:
    """The TLS context for `ca_file`, else for the first CA variable set, else the system's."""
    env = os.environ if environ is None else environ
    if ca_file is not None and str(ca_file):
        return CaTrust(_context_from(Path(ca_file), f"--ca-file {ca_file}"), f"--ca-file {ca_file}")
    for name in CA_ENV_VARS:
        value = env.get(name, "")
        if value:
            source = f"{name}={value}"
            return CaTrust(_context_from(Path(value), source), source)
    context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return CaTrust(context, "the system trust store")


def _context_from(path: Path, source: str) -> ssl.SSLContext:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ClientUsageError(f"{source}: cannot read the CA file ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        context = ssl.create_default_context(capath=str(path))
        return context
    if not stat.S_ISREG(mode):
        raise ClientUsageError(f"{source}: not a regular file")
    try:
        return ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as exc:
        raise ClientUsageError(
            f"{source}: not a PEM file of CA certificates "
            f"({str(exc.reason or exc).replace('_', ' ').lower()})"
        ) from None
    except OSError as exc:
        raise ClientUsageError(f"{source}: cannot read the CA file ({exc.strerror})") from None
