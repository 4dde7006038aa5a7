"""Fuzz the Calimero bundle reader (src/appshelf/formats/mpk.py, mpkverify.py) with Atheris.

    python3 -m venv .venv-fuzz && .venv-fuzz/bin/pip install -e . atheris
    .venv-fuzz/bin/python scripts/fuzz_mpk.py --seconds 120
    .venv-fuzz/bin/python scripts/fuzz_mpk.py --runs 200000 --findings /tmp/f.jsonl

Atheris is not a test dependency (scripts/fuzz_client_json.py says why). The first byte of
an input picks how the rest reaches `verify_bundle`:

- `mpk`: the bytes are the .mpk file itself (gzip framing, tar, everything);
- `tar`: the bytes are the tar inside; the harness gzips them, so mutations reach the tar
  reader and the member rules instead of dying in the gzip CRC;
- `manifest`: the bytes are a manifest body; the harness signs it (as mero-sign does, with
  a key it made) and packs it with the wasm and abi it declares, so mutations reach the
  shape, artifact and content checks behind the signature.

The corpus starts from the real bundles in tests/vectors/calimero and one made here. An
exception other than `BundleError` is a finding: recorded once per (mode, type, place)
with its input; the report lists them at the end.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import traceback
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS = REPO_ROOT / "tests" / "vectors" / "calimero"
MODES = ("mpk", "tar", "manifest")
WASM = b"\x00asm\x01\x00\x00\x00" + bytes(range(256))
ABI = b'{"methods":[]}'
DICTIONARY = [
    '"../"',
    '"/etc/passwd"',
    '"._"',
    '"manifest.json"',
    '"signature"',
    '"signerId"',
    '"services"',
    '"hash"',
    '"size"',
    '"path"',
    '"_x"',
    "null",
    "ustar\x00",
    "././@PaxHeader",
    "././@LongLink",
    "\x00\x05\x16\x07",
]


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tar(members: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


class Harness:
    """Signs manifest bodies with a key of its own and packs them into bundles."""

    def __init__(self) -> None:
        import nacl.signing

        self.key = nacl.signing.SigningKey(hashlib.sha256(b"appshelf fuzz_mpk").digest())

    def body(self) -> dict[str, Any]:
        return {
            "version": "1.0",
            "package": "com.example.fuzz",
            "appVersion": "1.0.0",
            "minRuntimeVersion": "0.1.0",
            "wasm": {
                "path": "app.wasm",
                "hash": hashlib.sha256(WASM).hexdigest(),
                "size": len(WASM),
            },
            "abi": {"path": "abi.json", "hash": hashlib.sha256(ABI).hexdigest(), "size": len(ABI)},
        }

    def signed_bundle(self, body: Any) -> bytes | None:
        """The bundle of this body, signed; None when the body has no canonical form."""
        from appshelf.formats.canonical import canonical_json
        from appshelf.formats.didkey import did_key

        if not isinstance(body, dict):
            return None
        body = dict(body)
        body["signerId"] = did_key(bytes(self.key.verify_key))
        view = {k: v for k, v in body.items() if k != "signature" and not k.startswith("_")}
        try:
            digest = hashlib.sha256(canonical_json(view)).digest()
        except Exception:
            return None
        body["signature"] = {
            "algorithm": "ed25519",
            "publicKey": _b64url(bytes(self.key.verify_key)),
            "signature": _b64url(self.key.sign(digest).signature),
        }
        manifest = json.dumps(body).encode()
        return gzip.compress(_tar({"manifest.json": manifest, "app.wasm": WASM, "abi.json": ABI}))


def seed_corpus(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    harness = Harness()
    seeds: list[tuple[int, bytes]] = [(2, json.dumps(harness.body()).encode())]
    own = harness.signed_bundle(harness.body())
    assert own is not None
    seeds += [(0, own), (1, gzip.decompress(own))]
    for path in sorted(VECTORS.glob("*/*.mpk")):
        data = path.read_bytes()
        seeds += [(0, data), (1, gzip.decompress(data))]
    for index, (mode, data) in enumerate(seeds):
        (corpus / f"seed-{index}-{MODES[mode]}").write_bytes(bytes([mode]) + data)


class Recorder:
    """Findings, once per (mode, exception type, innermost place), appended as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: set[tuple[str, str, str]] = set()

    def record(self, mode: str, exc: BaseException, data: bytes) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        place = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        key = (mode, type(exc).__name__, place)
        if key in self.seen:
            return
        self.seen.add(key)
        finding = {
            "mode": mode,
            "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc)[:300],
            "raised_at": place,
            "input_length": len(data),
            "input_hex": data[:4096].hex(),
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(finding) + "\n")
        print(f"FINDING {mode}: {finding['exception']} at {place}", flush=True)


def worker(findings: Path, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["appshelf"]):
        from appshelf.errors import BundleError, JsonRejectedError
        from appshelf.formats.boundedjson import loads_bounded
        from appshelf.formats.mpkverify import verify_bundle
    harness = Harness()
    recorder = Recorder(findings)

    def one_input(raw: bytes) -> None:
        if not raw:
            return
        mode, data = MODES[raw[0] % len(MODES)], raw[1:]
        if mode == "tar":
            data = gzip.compress(data, mtime=0)
        elif mode == "manifest":
            try:
                body = loads_bounded(data)
            except JsonRejectedError:
                return
            packed = harness.signed_bundle(body)
            if packed is None:
                return
            data = packed
        try:
            verify_bundle(data, package=None, app_version=None)
        except BundleError:
            pass
        except Exception as exc:  # a finding: not the reader's own error
            recorder.record(mode, exc, raw)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


def _dict_escape(token: str) -> str:
    """libFuzzer's dictionary syntax: \\xNN for anything but printable ASCII."""
    return "".join(
        c if 32 <= ord(c) < 127 and c not in '"\\' else f"\\x{ord(c):02x}" for c in token
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=120, help="stop after this long (120)")
    parser.add_argument("--runs", type=int, default=-1, help="stop after this many inputs")
    parser.add_argument("--findings", type=Path, help="JSON lines file (default: in the work dir)")
    parser.add_argument("--workdir", type=Path, help="corpus here (default: a temp dir)")
    parser.add_argument("--worker", nargs=1, metavar="FINDINGS", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.worker:
        worker(Path(args.worker[0]), rest)
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="appshelf-fuzz-mpk-"))
    work.mkdir(parents=True, exist_ok=True)
    findings = args.findings or work / "findings.jsonl"
    corpus = work / "corpus"
    seed_corpus(corpus)
    dictionary = work / "mpk.dict"
    dictionary.write_text("".join(f'"{_dict_escape(token)}"\n' for token in DICTIONARY))
    libfuzzer = [
        str(corpus),
        f"-max_total_time={args.seconds}",
        f"-runs={args.runs}",
        f"-dict={dictionary}",
        "-max_len=1048576",
        "-timeout=30",
        "-rss_limit_mb=3072",
        "-print_final_stats=1",
    ]
    command = [sys.executable, __file__, "--worker", str(findings), *libfuzzer]
    status = subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}).returncode
    found = (
        [json.loads(line) for line in findings.read_text().splitlines()]
        if findings.exists()
        else []
    )
    print(f"\nfuzzer exit status {status}; {len(found)} finding(s) in {findings}")
    for item in found:
        print(
            f"- {item['mode']}: {item['exception']} at {item['raised_at']}: {item['message'][:100]}"
        )
    return 1 if found or status != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
