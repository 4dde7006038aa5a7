"""Published state is verified before a build uses any of it (issue 13, "unverified
previous state"): over `--previous-url` (a real HTTP server on 127.0.0.1) and from a
folder, a snapshot not signed by the registry's key, or a keys.json that names an
attacker's key, never reaches the new output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from appshelf.formats.canonical import canonical_json, sha256_hex
from appshelf.formats.log import CHECKPOINT
from appshelf.signing.keys import RegistryKey, write_new_key_file
from conftest import StaticServer, build


@pytest.fixture
def key(tmp_path: Path) -> tuple[RegistryKey, Path]:
    path = tmp_path / "registry.key"
    return write_new_key_file(path), path


def _build_cli(source: Path, out: Path, url: str, key_path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["build", str(source), "-o", str(out), "--base-url", url, "--previous-url", url],
        env={"APPSHELF_SIGNING_KEY": key_path.read_text()},
    )
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _tamper(root: Path, change: dict[str, object], signer: RegistryKey | None) -> None:
    """Rewrite the live snapshot's body; sign it with `signer` (an attacker's key) over
    its compact JSON (2**62 has no RFC 8785 form), or leave the old signature on it."""
    envelope = json.loads((root / "snapshot.json").read_bytes())
    body = {**envelope["signed"], **change}
    if signer is not None:
        message = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        sig = signer.signing_key.sign(message).signature.hex()
        envelope = {"signatures": [{"keyid": signer.keyid, "sig": sig}], "signed": body}
    else:
        envelope["signed"] = body
    (root / "snapshot.json").write_text(json.dumps(envelope, separators=(",", ":")))


@pytest.mark.parametrize("signer", ["unsigned", "attacker"])
def test_a_forged_snapshot_at_previous_url_is_refused(
    example_source: Path, tmp_path: Path, key: tuple[RegistryKey, Path], signer: str
) -> None:
    registry_key, key_path = key
    attacker = write_new_key_file(tmp_path / "attacker.key")
    with StaticServer(tmp_path / "live") as server:
        build(
            example_source,
            server.root,
            base_url=server.url,
            environ={"APPSHELF_SIGNING_KEY": key_path.read_text()},
        )
        _tamper(server.root, {"version": 2**62}, attacker if signer == "attacker" else None)
        out = tmp_path / "out"
        code, output = _build_cli(example_source, out, server.url, key_path)
    assert code == 1
    assert "snapshot.json" in output and ("signature" in output or "signed by" in output)
    assert not out.exists()
    assert registry_key.keyid  # the build's own key: the only one trusted


def test_an_attackers_key_in_keys_json_is_never_carried_over(
    example_source: Path, tmp_path: Path, key: tuple[RegistryKey, Path]
) -> None:
    """keys.json is pinned by the snapshot: changing it breaks the pin. And the new
    keys.json comes from the verified release log, never from the old keys.json."""
    _, key_path = key
    attacker = write_new_key_file(tmp_path / "attacker.key")
    with StaticServer(tmp_path / "live") as server:
        env = {"APPSHELF_SIGNING_KEY": key_path.read_text()}
        build(example_source, server.root, base_url=server.url, environ=env)
        keys_path = server.root / "keys.json"
        keys = json.loads(keys_path.read_bytes())
        keys["keys"].append(
            {
                "algorithm": "ed25519",
                "development": False,
                "keyid": attacker.keyid,
                "public": attacker.public_hex,
                "status": "retired",
            }
        )
        keys_path.write_bytes(canonical_json(keys))
        out = tmp_path / "out"
        code, output = _build_cli(example_source, out, server.url, key_path)
        assert code == 0, output  # keys.json is not input: the log is
        written = json.loads((out / "keys.json").read_bytes())
        assert attacker.keyid not in {k["keyid"] for k in written["keys"]}
        pinned = json.loads((out / "snapshot.json").read_bytes())["signed"]["meta"]
        assert pinned["keys.json"]["sha256"] == sha256_hex((out / "keys.json").read_bytes())


@pytest.mark.parametrize(
    ("name", "refused"), [("snapshot.json", True), (CHECKPOINT, False)], ids=["snapshot", "log"]
)
def test_a_folder_where_a_published_file_should_be_is_never_a_traceback(
    example_source: Path, tmp_path: Path, name: str, refused: bool
) -> None:
    """--previous whose snapshot.json is a folder: an error naming the file, exit status
    1 (the reader checks the open file's type before it wraps it; it raised
    IsADirectoryError). The plain log checkpoint as a folder does not matter: the
    snapshot pins its content-addressed copy, which is what is read."""
    previous = tmp_path / "previous"
    build(example_source, previous)
    (previous / name).unlink()
    (previous / name).mkdir()
    result = CliRunner().invoke(
        main,
        ["build", str(example_source), "-o", str(tmp_path / "out"), "--previous", str(previous)],
    )
    assert not isinstance(result.exception, IsADirectoryError)
    if refused:
        assert result.exit_code == 1, result.output
        assert f"{name}: " in result.output and "not a regular file" in result.output
    else:
        assert result.exit_code == 0, result.output
