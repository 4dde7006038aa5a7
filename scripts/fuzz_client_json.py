"""Fuzz the client's readers of network bytes (src/appshelf/client/trusted.py) with Atheris.

    python3 -m venv .venv-fuzz && .venv-fuzz/bin/pip install -e . atheris
    .venv-fuzz/bin/python scripts/fuzz_client_json.py --seconds 300
    .venv-fuzz/bin/python scripts/fuzz_client_json.py --runs 200000 --findings /tmp/f.jsonl

Atheris (libFuzzer for Python, a binary wheel for CPython 3.11 on x86-64 Linux) is not a
test dependency: it is only needed here. The first byte of an input picks a reader, the
second holds flags, the rest is the document the registry would serve:

- `snapshot.json` and a manifest, as served (the envelope is parsed before any signature
  is checked), and signed: the harness parses the body, signs it with the key the client
  trusts and hands over the envelope, so mutations reach the model, expiry, registry
  binding and manifest-agreement checks behind the signature;
- `index.json`, `keys.json`, `registry.json`, `apps/<key>/app.json` and `versions.json`,
  pinned by the snapshot to their own digest (as a registry that signed them would).

A flag nests any of them in up to 4,033 arrays, a depth byte-level mutation rarely builds.

The corpus starts from the documents of a fresh build of example-registry. An exception
that is not an `AppshelfError` (which the CLI prints as one `Error:` line) is a finding:
it is recorded once per (reader, type, place) with its input, and fuzzing goes on. The
report lists them at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "example-registry"
BUILT_AT = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
APP, VERSION = "kv-store", "1.1.0"

TARGETS = (
    "snapshot",
    "snapshot-signed",
    "manifest",
    "manifest-signed",
    "index.json",
    "keys.json",
    "registry.json",
    "app.json",
    "versions.json",
)
FORCE_TYPE = 1  # flags: bit 0 sets the body's "type" to the expected one,
NEST = 2  # bit 1 nests the document in 1 + 64 * (flags >> 2) arrays (up to 4033 deep)

# Tokens libFuzzer may splice in: JSON's edges that Python's json module accepts.
DICTIONARY = [
    "[[[[[[[[[[[[[[[[",
    '{"a":{"a":{"a":{"a":',
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-0",
    "9" * 40,
    "1" + "0" * 400,
    '"\\ud800"',
    '"\\u0000"',
    "null",
    "true",
    '"sha256"',
    '"length"',
    '"version"',
    '"expires"',
    '"meta"',
    '"signed"',
    '"signatures"',
]


def seed_corpus(site: Path, corpus: Path) -> None:
    """One seed per reader, from a real build (signed ones: the `signed` body only)."""
    manifest = site / "apps" / APP / VERSION / "manifest.json"
    documents = {
        "snapshot": site / "snapshot.json",
        "manifest": manifest,
        "index.json": site / "index.json",
        "keys.json": site / "keys.json",
        "registry.json": site / "registry.json",
        "app.json": site / "apps" / APP / "app.json",
        "versions.json": site / "apps" / APP / "versions.json",
    }
    corpus.mkdir(parents=True, exist_ok=True)
    for index, target in enumerate(TARGETS):
        if target.endswith("-signed"):
            envelope = json.loads(documents[target.removesuffix("-signed")].read_bytes())
            data, flags = json.dumps(envelope["signed"]).encode(), FORCE_TYPE
        else:
            data, flags = documents[target].read_bytes(), 0
        (corpus / f"seed-{target}").write_bytes(bytes([index, flags]) + data)


def build_site(folder: Path) -> Path:
    """example-registry built with the development key, the key the fuzzed client trusts."""
    from appshelf.builder import BuildOptions, build_registry

    site = folder / "site"
    build_registry(EXAMPLE, site, BuildOptions(now=BUILT_AT, environ={}))
    return site


# -- the worker: runs under libFuzzer ----------------------------------------------------


class World:
    """What the readers are checked against: a trusted key, a verified snapshot, an app."""

    def __init__(self, site: Path) -> None:
        from appshelf.client import trusted as t
        from appshelf.formats.documents import AppDetail
        from appshelf.signing.envelope import trusted_keys_from_hex
        from appshelf.signing.keys import development_key

        self.t = t
        self.key = development_key()
        self.keys = trusted_keys_from_hex([self.key.public_hex])
        self.now = BUILT_AT + timedelta(hours=1)
        self.snapshot = t.verify_snapshot(
            (site / "snapshot.json").read_bytes(), self.keys, self.now, None
        )
        self.detail = AppDetail.model_validate_json((site / "apps" / APP / "app.json").read_bytes())
        self.entry = next(e for e in self.detail.versions if e.version == VERSION)

    def pinned(self, relpath: str, data: bytes) -> Any:
        """The verified snapshot, with `relpath` pinned to exactly these bytes."""
        from appshelf.formats.canonical import sha256_hex
        from appshelf.formats.documents import FileDigest

        meta = dict(self.snapshot.snapshot.meta)
        meta[relpath] = FileDigest(sha256=sha256_hex(data), length=len(data))
        snapshot = self.snapshot.snapshot.model_copy(update={"meta": meta})
        return self.t.TrustedSnapshot(snapshot, self.snapshot.keyid, self.snapshot.sha256)

    def sign(self, body_bytes: bytes, expected_type: str, force_type: bool) -> bytes | None:
        """An envelope of this body signed by the trusted key; None if the harness itself
        cannot parse or canonicalize it (the unsigned readers get those bytes raw)."""
        from appshelf.formats.canonical import canonical_json
        from appshelf.signing.envelope import signed_envelope_json

        try:
            body = json.loads(body_bytes)
            if not isinstance(body, dict):
                return None
            if force_type:
                body["type"] = expected_type
            canonical = canonical_json(body)
        except Exception:
            return None
        return signed_envelope_json(canonical, self.key)[0]

    def run(self, target: str, flags: int, data: bytes) -> None:
        """Feed one document to one reader; AppshelfError is the expected failure."""
        t = self.t
        if flags & NEST:  # depth that byte-level mutation alone rarely builds
            depth = 1 + 64 * (flags >> 2)
            data = b"[" * depth + data + b"]" * depth
        if target.endswith("-signed"):
            kind = t.SNAPSHOT_TYPE if target == "snapshot-signed" else t.MANIFEST_TYPE
            signed = self.sign(data, kind, bool(flags & FORCE_TYPE))
            if signed is None:
                return
            data, target = signed, target.removesuffix("-signed")
        if target == "snapshot":
            t.verify_snapshot(data, self.keys, self.now, None, self.snapshot.registry)
        elif target == "manifest":
            self._manifest(data)
        elif target == "app.json":
            t.parse_app(self.pinned(t.app_path(APP), data), APP, data)
        elif target == "versions.json":
            self._versions(data)
        else:
            t.parse_document(self.pinned(target, data), target, self._model(target), data)

    def _manifest(self, data: bytes) -> None:
        from appshelf.formats.canonical import sha256_hex
        from appshelf.formats.documents import FileDigest

        pin = FileDigest(sha256=sha256_hex(data), length=len(data))
        entry = self.entry.model_copy(update={"manifest": pin})
        self.t.verify_manifest(self.snapshot, APP, entry, data, self.keys)

    def _versions(self, data: bytes) -> None:
        from appshelf.formats.flows import FlowsVersions

        relpath = self.t.versions_path(APP)
        versions = self.t.parse_document(self.pinned(relpath, data), relpath, FlowsVersions, data)
        self.t.check_versions_file(self.detail, versions)

    @staticmethod
    def _model(target: str) -> Any:
        from appshelf.formats.documents import KeysDocument, RegistryIndex
        from appshelf.formats.flows import FlowsRegistry

        return {"index.json": RegistryIndex, "keys.json": KeysDocument}.get(target, FlowsRegistry)


class Recorder:
    """Findings, once per (reader, exception type, innermost place), appended as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: set[tuple[str, str, str]] = set()

    def record(self, target: str, exc: BaseException, raw: bytes) -> None:
        """`raw` is the whole input: reader byte, flags byte, document."""
        flags, data = raw[1], raw[2:]
        frames = traceback.extract_tb(exc.__traceback__)
        place = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        inner = [f for f in frames if "/appshelf/" in f.filename]
        caller = f"{Path(inner[-1].filename).name}:{inner[-1].lineno}" if inner else "?"
        key = (target, type(exc).__name__, place)
        if key in self.seen:
            return
        self.seen.add(key)
        finding = {
            "target": target,
            "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc)[:300],
            "raised_at": place,
            "appshelf_frame": caller,
            "flags": flags,
            "nested": 1 + 64 * (flags >> 2) if flags & NEST else 0,
            "input_length": len(data),
            "input_head": data[:160].decode("utf-8", "backslashreplace"),
            "input_hex": data.hex() if len(data) <= 4096 else data[:4096].hex(),
        }
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(finding) + "\n")
        print(f"FINDING {target}: {finding['exception']} at {place} ({caller})", flush=True)


def worker(site: Path, findings: Path, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["appshelf"]):
        from appshelf.errors import AppshelfError

        world = World(site)
    recorder = Recorder(findings)
    sys.setrecursionlimit(1000)  # the default: what the CLI runs with

    def one_input(raw: bytes) -> None:
        if len(raw) < 2:
            return
        target = TARGETS[raw[0] % len(TARGETS)]
        try:
            world.run(target, raw[1], raw[2:])
        except AppshelfError:
            pass
        except Exception as exc:  # a finding: not one of appshelf's own errors
            recorder.record(target, exc, raw)

    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()


# -- the driver --------------------------------------------------------------------------


def summarize(findings: Path) -> list[dict[str, Any]]:
    if not findings.exists():
        return []
    return [json.loads(line) for line in findings.read_text().splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=120, help="stop after this long (120)")
    parser.add_argument("--runs", type=int, default=-1, help="stop after this many inputs")
    parser.add_argument("--findings", type=Path, help="JSON lines file (default: in the work dir)")
    parser.add_argument("--workdir", type=Path, help="corpus and site here (default: temp dir)")
    parser.add_argument("--worker", nargs=2, metavar=("SITE", "FINDINGS"), help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.worker:
        worker(Path(args.worker[0]), Path(args.worker[1]), rest)
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="appshelf-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    findings = args.findings or work / "findings.jsonl"
    site = build_site(work) if not (work / "site").exists() else work / "site"
    corpus = work / "corpus"
    seed_corpus(site, corpus)
    dictionary = work / "json.dict"
    dictionary.write_text("".join(f"{json.dumps(token)}\n" for token in DICTIONARY))
    libfuzzer = [
        str(corpus),
        f"-max_total_time={args.seconds}",
        f"-runs={args.runs}",
        f"-dict={dictionary}",
        "-max_len=65536",
        "-timeout=20",
        "-rss_limit_mb=3072",
        "-print_final_stats=1",
    ]
    command = [sys.executable, __file__, "--worker", str(site), str(findings), *libfuzzer]
    status = subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}).returncode
    found = summarize(findings)
    print(f"\nfuzzer exit status {status}; {len(found)} finding(s) in {findings}")
    for item in found:
        print(
            f"- {item['target']}: {item['exception']} raised at {item['raised_at']} "
            f"(appshelf: {item['appshelf_frame']}), {item['input_length']} bytes"
            f"{' nested ' + str(item['nested']) + ' deep' if item['nested'] else ''}: "
            f"{item['input_head'][:80]!r}"
        )
    return 1 if found or status not in (0,) else 0


if __name__ == "__main__":
    sys.exit(main())
