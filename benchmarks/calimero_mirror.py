"""Size and build time of the Calimero v1 read mirror (docs/spec.md section 12).

    python benchmarks/calimero_mirror.py /tmp/bench-calimero --versions 10000
    python benchmarks/calimero_mirror.py /tmp/bench-calimero --versions 100000 --skip-off

Generates (deterministically) a source tree of `--versions` signed .mpk bundles, ten
versions per app, each a real gzip tar of manifest.json, app.wasm (1 KiB) and abi.json,
signed with a key made from a fixed seed; then builds it cold with `[mirrors] calimero`
off and on (separate outputs) and once more with it on (a no-op rebuild), and reports the
times and the mirror's file count and bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
import time
from pathlib import Path

import nacl.signing
import rfc8785

from appshelf.builder import BuildOptions, build_registry
from appshelf.formats.didkey import did_key

KEY = nacl.signing.SigningKey(hashlib.sha256(b"appshelf calimero benchmark").digest())


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_bundle(package: str, version: str) -> bytes:
    wasm = b"\x00asm\x01\x00\x00\x00" + hashlib.sha256(f"{package}{version}".encode()).digest() * 32
    abi = json.dumps({"package": package, "methods": ["get", "set"]}).encode()
    manifest = {
        "version": "1.0",
        "package": package,
        "appVersion": version,
        "minRuntimeVersion": "0.1.0",
        "metadata": {"name": package.rsplit(".", 1)[-1], "description": "benchmark bundle"},
        "wasm": {"path": "app.wasm", "hash": hashlib.sha256(wasm).hexdigest(), "size": len(wasm)},
        "abi": {"path": "abi.json", "hash": hashlib.sha256(abi).hexdigest(), "size": len(abi)},
        "signerId": did_key(bytes(KEY.verify_key)),
    }
    digest = hashlib.sha256(rfc8785.dumps(manifest)).digest()
    manifest["signature"] = {
        "algorithm": "ed25519",
        "publicKey": _b64url(bytes(KEY.verify_key)),
        "signature": _b64url(KEY.sign(digest).signature),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for name, data in (
            ("manifest.json", json.dumps(manifest).encode()),
            ("app.wasm", wasm),
            ("abi.json", abi),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def generate(root: Path, versions: int, mirror: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    text = '[registry]\nname = "Calimero bench"\nbase_url = "https://apps.example.com/"\n'
    (root / "registry.toml").write_text(text + ("[mirrors]\ncalimero = true\n" if mirror else ""))
    if (root / "apps").exists():
        return
    for index in range(versions // 10):
        key = f"app-{index:05d}"
        folder = root / "apps" / key
        folder.mkdir(parents=True)
        package = f"com.bench.{key}"
        (folder / "app.toml").write_text(
            f'name = "App {index}"\ndescription = "benchmark"\ncalimero_package = "{package}"\n'
        )
        for minor in range(10):
            version = f"1.{minor}.0"
            (folder / version).mkdir()
            (folder / version / f"{key}.mpk").write_bytes(make_bundle(package, version))


def timed_build(source: Path, out: Path) -> float:
    started = time.perf_counter()
    build_registry(source, out, BuildOptions(environ={"SOURCE_DATE_EPOCH": "1767225600"}))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--versions", type=int, default=10000)
    parser.add_argument("--skip-off", action="store_true", help="do not build with the mirror off")
    args = parser.parse_args()
    source = args.work / "source"
    started = time.perf_counter()
    generate(source, args.versions, mirror=False)
    print(f"generated {args.versions} bundles in {time.perf_counter() - started:.1f} s")
    for name in ("off", "on"):  # each output with its own build cache beside it
        shutil.rmtree(args.work / name, ignore_errors=True)
        (args.work / name).mkdir()
    off, on = args.work / "off" / "out", args.work / "on" / "out"
    if not args.skip_off:
        print(f"build, mirror off, cold: {timed_build(source, off):.1f} s")
    generate(source, args.versions, mirror=True)
    print(f"build, mirror on, cold:  {timed_build(source, on):.1f} s")
    print(f"build, mirror on, no-op: {timed_build(source, on):.1f} s")
    files = [p for p in (on / "v1").rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    search = (on / "v1" / "search").stat().st_size
    snapshot = (on / "snapshot.json").stat().st_size
    print(
        f"mirror: {len(files)} files, {total:,} bytes (v1/search {search:,} bytes); "
        f"snapshot.json {snapshot:,} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
