"""Serve a folder on 127.0.0.1 and record every response, for the benchmarks that go over HTTP.

run.py uses it twice: to publish the last build's output for `appshelf build --previous-url`
(the fresh-clone scenario), and to count the metadata bytes a client downloads for one
`appshelf fetch`. The server is the standard library's threaded file server; a response's
bytes are counted as written to the socket (status line and headers included) and, apart,
as the body alone. Nothing is compressed (GitHub Pages and CloudFront would gzip the JSON).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO


@dataclass
class Response:
    method: str
    path: str
    status: int
    wire_bytes: int  # status line + headers + body
    body_bytes: int


class _CountingWriter:
    """Wraps the handler's socket writer and counts what goes through it."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        result: int = self.inner.write(data)
        return result

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    @property
    def closed(self) -> bool:
        return bool(self.inner.closed)


class _RecordingHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real static host
    timeout = 10  # an idle kept-alive connection cannot hold the server's close forever

    def __init__(self, *args: Any, records: list[Response], **kwargs: Any):
        self._records = records
        self._status = 0
        self._body = 0
        super().__init__(*args, **kwargs)

    def setup(self) -> None:
        super().setup()
        self.wfile = _CountingWriter(self.wfile)  # type: ignore[assignment]

    def handle_one_request(self) -> None:
        writer: _CountingWriter = self.wfile  # type: ignore[assignment]
        writer.count, self._status, self._body = 0, 0, 0
        super().handle_one_request()
        if self._status:
            self._records.append(
                Response(self.command, self.path, self._status, writer.count, self._body)
            )

    def send_response(self, code: int, message: str | None = None) -> None:
        self._status = code
        super().send_response(code, message)

    def copyfile(self, source: BinaryIO, outputfile: Any) -> None:  # type: ignore[override]
        while chunk := source.read(1 << 16):
            outputfile.write(chunk)
            self._body += len(chunk)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, list[Response]]]:
    """Serve `folder` (which may not exist yet) on a free port of 127.0.0.1.

    Yields the base URL (ending in /) and the list the server appends a Response to
    after every request; clear it to start counting afresh.
    """
    records: list[Response] = []
    handler = functools.partial(_RecordingHandler, directory=str(folder), records=records)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # Not daemon threads: server_close() then joins every handler, so a response the
    # client already received is recorded before the caller reads `records` (a handler
    # appends its record just after its last write reaches the socket).
    httpd.daemon_threads = False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", records
    finally:
        httpd.shutdown()
        httpd.server_close()


def settle(records: list[Response], quiet: float = 0.3) -> list[Response]:
    """`records` once no response was added for `quiet` seconds: read inside `serve`
    after the client is done, the last handler may still be about to append its record."""
    count = -1
    while count != len(records):
        count = len(records)
        time.sleep(quiet)
    return list(records)
