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
    assert "DEVELOPMENT key" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("appshelf-serve-")]


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
