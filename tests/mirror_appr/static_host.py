"""A static web host on 127.0.0.1 that answers like nginx's default static serving
(and GitHub Pages), for the appr mirror's paths that are both a file and a folder.

Rules, applied to every GET/HEAD (docs/spec.md section 14 gives the nginx config):

1. The query string is ignored for the lookup (`pull?format=json` serves `pull`).
2. The path is percent-decoded and looked up under the served folder (no `..`).
3. A regular file: 200 with its bytes.
4. A folder, path without a final `/`: 301 to the same path with `/` (query kept).
5. A folder, path with a final `/`: its `index.html` if that is a regular file.
6. Anything else (no such file, no index, a symlink): 404. No directory listings.
"""

from __future__ import annotations

import functools
import os
import shutil
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conftest import LoopbackServer


class NginxLikeHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self) -> Any:
        path = self.translate_path(self.path)
        parts = urlsplit(self.path)
        if os.path.isdir(path) and not os.path.islink(path):
            if not parts.path.endswith("/"):
                self.send_response(301)
                query = f"?{parts.query}" if parts.query else ""
                self.send_header("Location", parts.path + "/" + query)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            path = os.path.join(path, "index.html")
        if not os.path.isfile(path) or os.path.islink(path):
            self.send_error(404, "File not found")
            return None
        handle = open(path, "rb")  # noqa: SIM115 (the base class closes it)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Length", str(os.fstat(handle.fileno()).st_size))
        self.end_headers()
        return handle

    def list_directory(self, path: Any) -> None:
        self.send_error(404, "File not found")
        return None

    def copyfile(self, source: Any, outputfile: Any) -> None:
        shutil.copyfileobj(source, outputfile)


class NginxLikeServer(LoopbackServer):
    """Serves one folder under the rules above."""

    def __init__(self, root: Path):
        self.root = root
        super().__init__(functools.partial(NginxLikeHandler, directory=str(root)))
