"""`appshelf serve`: build into a private folder, serve it on 127.0.0.1, rebuild on change.

The atomic writer does the heavy lifting: a failed build leaves the output folder as
it was, so the last good site keeps being served while the error is reported in the
terminal (through `on_event`) and on every open page (the reload script polls
`/__appshelf__/status` and reloads when a build changed something).
"""

from __future__ import annotations

import errno
import html
import json
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from appshelf.builder import BuildOptions, BuildReport, build_registry
from appshelf.errors import AppshelfError
from appshelf.site.generator import SiteOptions, site_generator

CONTROL_PREFIX = "/__appshelf__/"
# Every response that is not an HTML page (icons above all: an SVG opened directly is a
# document, and a <meta> CSP cannot cover it) is a sandboxed document that may load and
# run nothing. docs/deploy.md gives the same header for real hosts.
FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
_WATCHED_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})

RELOAD_JS = """\
/* appshelf serve: reload when the site is rebuilt; show build errors on the page. */
(function () {
  "use strict";
  var seen = null, box = null;
  function banner() {
    var b = document.createElement("div");
    b.id = "appshelf-preview-banner";
    b.setAttribute("role", "note");
    b.textContent = "PREVIEW (appshelf serve): signed with the preview key, not this " +
      "registry's own; not for publishing.";
    var s = b.style;
    s.position = "sticky"; s.top = "0"; s.zIndex = "1001"; s.padding = ".4rem 1rem";
    s.background = "#92400e"; s.color = "#fff"; s.textAlign = "center";
    s.font = "600 14px/1.4 system-ui, sans-serif";
    document.body.insertBefore(b, document.body.firstChild);
  }
  if (document.body) banner(); else document.addEventListener("DOMContentLoaded", banner);
  function show(message) {
    if (!box) {
      box = document.createElement("pre");
      box.id = "appshelf-preview-error";
      box.setAttribute("role", "alert");
      var s = box.style;
      s.position = "fixed"; s.left = "1rem"; s.right = "1rem"; s.bottom = "1rem"; s.zIndex = "1000";
      s.maxHeight = "50vh"; s.overflow = "auto"; s.margin = "0"; s.padding = "1rem";
      s.background = "#7f1d1d"; s.color = "#fff"; s.borderRadius = "8px"; s.whiteSpace = "pre-wrap";
      s.font = "14px/1.4 ui-monospace, monospace"; s.boxShadow = "0 4px 24px rgba(0,0,0,.35)";
      document.body.appendChild(box);
    }
    box.textContent = "appshelf serve: the last build failed; showing the last good site." +
      "\\n\\n" + message;
  }
  function poll() {
    fetch("/__appshelf__/status", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (state) {
        if (seen === null) seen = state.build;
        else if (state.build !== seen) { location.reload(); return; }
        if (state.error) show(state.error);
        else if (box) { box.remove(); box = null; }
        setTimeout(poll, 400);
      }, function () { setTimeout(poll, 1500); });
  }
  poll();
})();
"""


@dataclass(frozen=True)
class PreviewEvent:
    """What happened in one build, for the terminal."""

    kind: str  # "built", "unchanged" or "failed"
    message: str
    report: BuildReport | None = None


class _Handler(SimpleHTTPRequestHandler):
    server: _HTTPServer
    _content_type = ""  # of the response being sent

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "content-type":
            self._content_type = value
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        """Pages carry their own CSP (a <meta>); anything else gets `FILE_CSP`."""
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if not self._content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", FILE_CSP)
        self._content_type = ""
        super().end_headers()

    def do_GET(self) -> None:
        preview = self.server.preview
        path = self.path.split("?", 1)[0]
        if self.headers.get("Host", "") not in preview.hosts:
            # DNS rebinding: a page on another site must not read the preview through a
            # host name of its own that resolves to 127.0.0.1.
            self._send(421, "text/plain; charset=utf-8", "unknown host\n")
            return
        if path == CONTROL_PREFIX + "status":
            build, error = preview.state()
            self._send(200, "application/json", json.dumps({"build": build, "error": error}))
        elif path == CONTROL_PREFIX + "reload.js":
            self._send(200, "text/javascript; charset=utf-8", RELOAD_JS)
        elif not preview.has_site:
            _, error = preview.state()
            self._send(503, "text/html; charset=utf-8", _waiting_page(error))
        else:
            super().do_GET()

    def _send(self, status: int, content_type: str, text: str) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], preview: PreviewServer):
        self.preview = preview
        super().__init__(address, self._make_handler)

    def _make_handler(self, *args: Any) -> _Handler:
        return _Handler(*args, directory=str(self.preview.output))


def _waiting_page(error: str | None) -> str:
    text = error or "Building..."
    return (
        "<!doctype html><meta charset=utf-8><title>appshelf serve</title>"
        '<script src="/__appshelf__/reload.js" defer></script>'
        f"<h1>No site yet</h1><pre>{html.escape(text)}</pre>"
    )


class _Watch(FileSystemEventHandler):
    def __init__(self, root: Path, changed: threading.Event):
        self.root = root
        self.changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _WATCHED_EVENTS or (
            event.is_directory and (event.event_type == "modified")
        ):
            return
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        for raw in paths:
            if not raw:
                continue
            path = Path(str(raw))
            try:
                parts = path.relative_to(self.root).parts
            except ValueError:
                continue
            if not any(part.startswith(".") or part.endswith("~") for part in parts):
                self.changed.set()
                return


class PreviewServer:
    """Serve a live preview of the registry in `source` on 127.0.0.1:`port` (0: any)."""

    def __init__(
        self,
        source: Path,
        port: int = 8000,
        *,
        debounce: float = 0.3,
        on_event: Callable[[PreviewEvent], None] | None = None,
        environ: Mapping[str, str] | None = None,
    ):
        self.source = source.resolve()
        if not (self.source / "registry.toml").is_file():
            raise AppshelfError(
                f"{source}: no registry.toml here; give the folder of a registry source tree"
            )
        self.debounce = debounce
        self.on_event = on_event or (lambda event: None)
        self.environ = environ
        self.now = datetime.now(UTC).replace(microsecond=0)  # stable across rebuilds
        self._workdir = Path(tempfile.mkdtemp(prefix="appshelf-serve-"))
        self.output = self._workdir / "site"
        self._empty = self._workdir / "empty"  # no published state: a preview may change
        self._empty.mkdir()
        self._lock = threading.Lock()
        self._build = 0
        self._error: str | None = None
        self._changed = threading.Event()
        self._stopping = threading.Event()
        try:
            self._httpd = _HTTPServer(("127.0.0.1", port), self)
        except OSError as exc:
            shutil.rmtree(self._workdir, ignore_errors=True)
            if exc.errno == errno.EADDRINUSE:
                raise AppshelfError(
                    f"port {port} on 127.0.0.1 is in use: stop the other server or "
                    "choose another port with --port"
                ) from None
            raise AppshelfError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})") from None
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.hosts = frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})
        self._observer: Any = None
        self._threads: list[threading.Thread] = []

    @property
    def has_site(self) -> bool:
        """Whether some build succeeded (so a failed one leaves a good site served)."""
        return (self.output / "index.html").is_file()

    def state(self) -> tuple[int, str | None]:
        with self._lock:
            return self._build, self._error

    def rebuild(self) -> PreviewEvent:
        """One build; the output folder changes only when it succeeds."""
        options = BuildOptions(
            base_url=self.url,
            now=self.now,
            previous=self._empty,
            generators=(site_generator(SiteOptions(live_reload=True)),),
            preview=True,
        )
        if self.environ is not None:
            options.environ = dict(self.environ)
        try:
            report = build_registry(self.source, self.output, options)
        except AppshelfError as exc:
            event = PreviewEvent("failed", str(exc))
        except Exception:  # a bug must not take the preview down; show it instead
            event = PreviewEvent("failed", "internal error:\n" + traceback.format_exc())
        else:
            kind = "built" if report.changed else "unchanged"
            event = PreviewEvent(kind, f"{kind} in {report.seconds:.2f} s", report)
        with self._lock:
            if event.kind == "failed":
                self._error = event.message
            else:
                self._error = None
                if event.kind == "built":
                    self._build += 1
        self.on_event(event)
        return event

    def start(self) -> None:
        """First build, then serve and watch in background threads."""
        self.rebuild()
        self._observer = Observer()
        self._observer.schedule(
            _Watch(self.source, self._changed), str(self.source), recursive=True
        )
        self._observer.start()
        for target in (self._httpd.serve_forever, self._rebuild_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _rebuild_loop(self) -> None:
        while not self._stopping.is_set():
            if not self._changed.wait(timeout=0.5):
                continue
            # Debounce: wait until the tree has been quiet for `debounce` seconds.
            while True:
                self._changed.clear()
                time.sleep(self.debounce)
                if not self._changed.is_set() or self._stopping.is_set():
                    break
            if not self._stopping.is_set():
                self.rebuild()

    def wait(self) -> None:
        """Block until `stop` (or Ctrl+C in the caller)."""
        while not self._stopping.wait(timeout=0.5):
            pass

    def stop(self) -> None:
        self._stopping.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._threads:  # shutdown() would wait forever for a loop never started
            self._httpd.shutdown()
        self._httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> PreviewServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
