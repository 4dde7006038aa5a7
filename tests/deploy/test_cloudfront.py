"""The CloudFront invalidation request, sent to a local HTTP endpoint that records it.

No CloudFront here (no internet in tests): the endpoint answers as the CloudFront API
does, through botocore's standard `AWS_ENDPOINT_URL_CLOUDFRONT` setting, so what is
checked is the request appshelf really sends after a real deploy to SeaweedFS.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from appshelf.cli import main
from conftest import build
from deploy.conftest import SeaweedS3
from deploy.helpers import add_version

pytestmark = pytest.mark.s3

ANSWER = b"""<?xml version="1.0" encoding="UTF-8"?>
<Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">
<Id>I2J0I21PCUYOIK</Id><Status>InProgress</Status><CreateTime>2026-01-15T12:00:00Z</CreateTime>
<InvalidationBatch><Paths><Quantity>1</Quantity><Items><Path>/x</Path></Items></Paths>
<CallerReference>r</CallerReference></InvalidationBatch></Invalidation>"""


class Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.requests.append((self.path, body))
        self.send_response(201)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def cloudfront(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, bytes]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFRONT", f"http://127.0.0.1:{server.server_port}")
    Recorder.requests = []
    yield Recorder.requests
    server.shutdown()
    server.server_close()


def test_invalidates_changed_short_cache_paths(
    seaweed: SeaweedS3,
    bucket: str,
    example_source: Path,
    tmp_path: Path,
    aws_env: None,
    cloudfront: list[tuple[str, bytes]],
) -> None:
    source = example_source
    site = tmp_path / "site"
    build(source, site, base_url="https://registry.example/r/")
    args = [
        "deploy",
        str(site),
        f"s3://{bucket}/r",
        "--endpoint-url",
        seaweed.endpoint,
        "--cloudfront-distribution",
        "E2EXAMPLE",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "CloudFront invalidation I2J0I21PCUYOIK" in result.output
    ((path, body),) = cloudfront
    assert path == "/2020-05-31/distribution/E2EXAMPLE/invalidation"
    assert b"<Path>/r/*</Path>" in body  # a first deploy changes everything: one wildcard
    # A no-op deploy invalidates nothing; one new version names only what changed.
    assert CliRunner().invoke(main, args).exit_code == 0
    assert len(cloudfront) == 1
    add_version(source, "hello-world", "1.2.0")
    build(source, site, base_url="https://registry.example/r/")
    assert CliRunner().invoke(main, args).exit_code == 0
    (_, body) = cloudfront[1]
    paths = sorted(p.split(b"</Path>")[0].decode() for p in body.split(b"<Path>")[1:])
    assert paths == [
        "/r/apps/hello-world/1.2.0/manifest.json",
        "/r/apps/hello-world/app.json",
        "/r/apps/hello-world/versions.json",
        "/r/bins/2.json",  # the app's bin (docs/spec.md 4.8)
        "/r/index.json",
        "/r/log/checkpoint",  # log tiles are immutable: never invalidated
        "/r/snapshot.json",
    ]
