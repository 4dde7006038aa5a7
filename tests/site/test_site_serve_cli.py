"""`appshelf serve` as a user runs it: a real process, a real port, Ctrl+C to stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from appshelf.cli import main
from appshelf.site.preview import PreviewServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, host: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_serve_process_serves_and_stops_cleanly(example_source: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("APPSHELF_SIGNING_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "appshelf", "serve", str(example_source), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = _get(url + "index.html")
                break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert status == 200 and "appshelf example registry" in body
        assert '<script src="/__appshelf__/reload.js" defer></script>' in body
        assert json.loads(_get(url + "__appshelf__/status")[1]) == {"build": 1, "error": None}
        manifest = json.loads(_get(url + "apps/kv-store/1.1.1/manifest.json")[1])
        assert manifest["signed"]["registry"] == url  # built for the preview's own address
        assert _get(url + "index.html", host=f"evil.example:{port}")[0] == 421
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith("appshelf-serve-")]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert f"Serving {example_source.resolve()} at http://127.0.0.1:{port}/" in out
    assert "Stopped." in out and "Traceback" not in err
    assert "PREVIEW: signed with the preview key" in out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("appshelf-serve-")]


def _serve(source: Path, tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "appshelf", "serve", str(source), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path), **env},
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    while True:
        try:
            state = json.loads(_get(url + "__appshelf__/status")[1])
            if state["build"] or state["error"]:
                return process, url
        except OSError:
            pass
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "serve did not build"
        time.sleep(0.1)


def test_serve_previews_a_production_registry_without_credentials(
    example_source: Path, tmp_path: Path
) -> None:
    """production = true and a key_id, as docs/deploy.md advises: serve still works, signs
    with the preview key (never the real one, even when it is in the environment) and says
    so in the terminal and on every page."""
    from appshelf.signing.keys import development_key, parse_private_key

    real = "11" * 32
    real_keyid = parse_private_key(real, origin="test").keyid
    config = example_source / "registry.toml"
    text = config.read_text().replace(
        "[signing]\n", f'[signing]\nproduction = true\nkey_id = "{real_keyid}"\n'
    )
    assert "production = true" in text
    config.write_text(text)
    process, url = _serve(example_source, tmp_path, {"APPSHELF_SIGNING_KEY": real})
    try:
        assert json.loads(_get(url + "__appshelf__/status")[1]) == {"build": 1, "error": None}
        status, body = _get(url + "index.html")
        assert status == 200 and "appshelf example registry" in body
        keys = json.loads(_get(url + "keys.json")[1])["keys"]
        assert [k["keyid"] for k in keys] == [development_key().keyid]
        script = _get(url + "__appshelf__/reload.js")[1]
        assert "appshelf-preview-banner" in script and "PREVIEW (appshelf serve)" in script
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "PREVIEW: signed with the preview key" in out and "Build failed" not in err
    assert "--key-file" not in out + err and "DEVELOPMENT key, which anyone" not in err


def test_serve_says_when_there_is_no_site_yet(example_source: Path, tmp_path: Path) -> None:
    (example_source / "apps/kv-store/app.toml").write_text("name = [\n")
    process, url = _serve(example_source, tmp_path, {})
    try:
        assert _get(url + "index.html")[0] == 503
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=20)
    assert "Build failed (no site to serve yet)" in err
    assert "still serving the last good site" not in err


def test_serve_refuses_a_busy_port_and_a_non_registry(example_source: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(main, ["serve", str(example_source), "--port", str(port)])
    assert result.exit_code == 1
    assert f"Error: port {port} on 127.0.0.1 is in use" in result.output
    result = runner.invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 1 and "no registry.toml here" in result.output


def test_serve_sends_a_sandbox_csp_for_everything_but_pages(example_source: Path) -> None:
    """An SVG opened directly is a document that a <meta> cannot cover: the header must."""
    sandbox = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    with PreviewServer(example_source, port=0, environ={}) as server:
        for path in ("apps/hello-world/icon.svg", "apps/kv-store/icon.png", "registry.json"):
            with urllib.request.urlopen(server.url + path, timeout=5) as response:
                assert response.headers["Content-Security-Policy"] == sandbox, path
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        with urllib.request.urlopen(server.url + "apps/hello-world/index.html", timeout=5) as page:
            assert page.headers["Content-Type"].startswith("text/html")
            assert page.headers["Content-Security-Policy"] is None  # its own <meta> CSP
            assert "Content-Security-Policy" in page.read().decode()
