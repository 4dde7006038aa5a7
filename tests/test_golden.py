"""Golden signed files: rebuilt from a fixed key and clock, compared byte for byte.

A difference means the wire format changed: if intended, run tests/golden/regenerate.py,
review the diff, and update docs/spec.md's worked example to match.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
SPEC = GOLDEN.parent.parent / "docs" / "spec.md"
VERIFY_JS = GOLDEN.parent.parent / "templates" / "static" / "verify.js"
NODE = shutil.which("node")

# Runs docs/spec.md's JavaScript with the site's own RFC 8785 code (verify.js, loaded
# with just enough of a browser around it) as `canonicalize`.
_PRELUDE = """
globalThis.window = globalThis;
globalThis.document = { readyState: "complete", getElementById: () => null, querySelectorAll: () => [] };
require(process.argv[2]);
const canonicalize = window.appshelfVerify.canonicalize;
"""
_DRIVER = """
const fs = require("node:fs");
const [, , , manifestPath, artifactPath, publicHex, baseUrl] = process.argv;
(async () => {
  const manifest = fs.readFileSync(manifestPath);
  const body = await verifyManifest(manifest, publicHex, baseUrl, "hello", "1.0.0");
  await verifyArtifact(fs.readFileSync(artifactPath), body);
  console.log("verified");
  const altered = Buffer.from(manifest.toString().replace("Says hello.", "Says hullo."));
  const attempts = [
    () => verifyManifest(altered, publicHex, baseUrl, "hello", "1.0.0"),
    () => verifyManifest(manifest, publicHex, "https://other.example/", "hello", "1.0.0"),
    () => verifyArtifact(Buffer.from("hellO\\n"), body),
  ];
  for (const attempt of attempts) {
    await attempt().then(() => console.log("accepted"), (e) => console.log(e.message));
  }
})().catch((e) => { console.error(e); process.exit(1); });
"""


def _regenerate_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("golden_regenerate", GOLDEN / "regenerate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_golden_files_are_reproduced_byte_for_byte(tmp_path: Path) -> None:
    _regenerate_module().build_golden(tmp_path / "out")
    assert _tree(tmp_path / "out") == _tree(GOLDEN / "expected")


def test_spec_worked_example_quotes_the_golden_files() -> None:
    spec = (GOLDEN.parent.parent / "docs" / "spec.md").read_text()
    manifest = (GOLDEN / "expected/apps/hello/1.0.0/manifest.json").read_text()
    assert manifest in spec


def _node_major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    return int(version.stdout.strip().lstrip("v").split(".")[0])


@pytest.mark.skipif(NODE is None, reason="no node on PATH")
def test_spec_javascript_verifier_runs_in_the_node_it_names(tmp_path: Path) -> None:
    """The spec's verifier, as printed, in the oldest Node.js the spec says it needs."""
    assert NODE is not None
    spec = SPEC.read_text()
    stated = re.search(r"^\| Node\.js \| (\d+) or later", spec, re.MULTILINE)
    assert stated, "docs/spec.md must say which Node.js runs its JavaScript"
    if _node_major(NODE) < int(stated.group(1)):
        pytest.skip(f"node is older than the Node.js {stated.group(1)} the spec names")
    code = re.search(r"```js\n(.*?)```", spec, re.DOTALL)
    public = re.search(r"^## 6\..*?^- public `([0-9a-f]{64})`", spec, re.DOTALL | re.MULTILINE)
    assert code and public
    script = tmp_path / "verify-from-spec.js"
    script.write_text(_PRELUDE + code.group(1) + _DRIVER)
    version = GOLDEN / "expected/apps/hello/1.0.0"
    args = [str(VERIFY_JS), str(version / "manifest.json"), str(version / "hello-1.0.0.txt")]
    base = "https://registry.example.com/"
    result = subprocess.run(
        [NODE, str(script), *args, public.group(1), base], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "verified",
        "bad signature",
        "wrong document",
        "sha256 mismatch",
    ]


def test_spec_release_log_example_quotes_the_golden_log() -> None:
    """docs/spec.md section 9.6 quotes the golden log's entries, leaf hashes, root and
    checkpoint; recompute each from the files as an implementer would."""
    import base64
    import hashlib
    import json

    text = SPEC.read_text()
    example = text[text.index("### 9.6 Worked example") :]
    blocks = re.findall(r"```(?:json)?\n(.*?)```", example, re.S)
    entries_text, checkpoint_text = blocks[0], blocks[1]
    log = GOLDEN / "expected" / "log"
    bundle = (log / "tile/entries/000.p/2").read_bytes()
    entries, offset = [], 0
    while offset < len(bundle):
        length = int.from_bytes(bundle[offset : offset + 2], "big")
        entries.append(bundle[offset + 2 : offset + 2 + length])
        offset += 2 + length
    assert [e.decode() for e in entries] == entries_text.strip().splitlines()
    leaves = [hashlib.sha256(b"\x00" + e).digest() for e in entries]
    assert (log / "tile/0/000.p/2").read_bytes() == b"".join(leaves)
    root = hashlib.sha256(b"\x01" + leaves[0] + leaves[1]).hexdigest()
    for leaf in leaves:
        assert leaf.hex() in example
    assert root in example
    checkpoint = (log / "checkpoint").read_bytes()
    assert checkpoint.decode() == checkpoint_text
    assert base64.b64decode(checkpoint.decode().splitlines()[2]).hex() == root
    snapshot = json.loads((GOLDEN / "expected" / "snapshot.json").read_bytes())["signed"]
    assert snapshot["log"] == {"root": root, "size": 2}
    pin = snapshot["meta"]["log/checkpoint"]
    assert pin == {"length": len(checkpoint), "sha256": hashlib.sha256(checkpoint).hexdigest()}
    assert f"({pin['length']} bytes, sha256\n`{pin['sha256']}`)" in example
