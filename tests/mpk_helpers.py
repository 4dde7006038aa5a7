"""Make Calimero .mpk bundles in tests: real gzip tars, signed the way mero-sign signs."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import nacl.signing
import rfc8785

from appshelf.formats.didkey import did_key

WASM = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 4
ABI = b'{"methods":[]}'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_manifest(manifest: dict[str, Any], key: nacl.signing.SigningKey) -> dict[str, Any]:
    """Set signerId and signature as core's sign_manifest_json does (the v0 scheme)."""
    signed = dict(manifest)
    signed["signerId"] = did_key(bytes(key.verify_key))
    view = {k: v for k, v in signed.items() if k != "signature" and not k.startswith("_")}
    digest = hashlib.sha256(rfc8785.dumps(view)).digest()
    signed["signature"] = {
        "algorithm": "ed25519",
        "publicKey": b64url(bytes(key.verify_key)),
        "signature": b64url(key.sign(digest).signature),
    }
    return signed


def artifact(path: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "hash": hashlib.sha256(data).hexdigest(), "size": len(data)}


def base_manifest(package: str = "com.example.kv", version: str = "1.0.0") -> dict[str, Any]:
    return {
        "version": "1.0",
        "package": package,
        "appVersion": version,
        "minRuntimeVersion": "0.1.0",
        "metadata": {"name": "KV Example"},
        "wasm": artifact("app.wasm", WASM),
        "abi": artifact("abi.json", ABI),
        "migrations": [],
    }


@dataclass
class Entry:
    """One tar member: a file (data), a folder, or any other tar type."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    size: int | None = None  # a header size other than len(data)
    pax: dict[str, str] = field(default_factory=dict)


def tar_gz(entries: Iterable[Entry], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.type
            info.linkname = entry.linkname
            info.size = len(entry.data) if entry.type == tarfile.REGTYPE else 0
            info.mtime = 1_700_000_000
            info.pax_headers = entry.pax
            archive.addfile(info, io.BytesIO(entry.data) if entry.type == tarfile.REGTYPE else None)
    data = raw.getvalue()
    return gzip_bytes(data)


def gzip_bytes(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def bundle(
    key: nacl.signing.SigningKey,
    manifest: dict[str, Any] | None = None,
    extra: Iterable[Entry] = (),
    files: dict[str, bytes] | None = None,
) -> bytes:
    """A signed bundle: manifest.json, app.wasm and abi.json (or `files`), plus `extra`."""
    signed = sign_manifest(manifest or base_manifest(), key)
    members = [Entry("manifest.json", json.dumps(signed, indent=2).encode())]
    for name, data in (files if files is not None else {"app.wasm": WASM, "abi.json": ABI}).items():
        members.append(Entry(name, data))
    return tar_gz([*members, *extra])
