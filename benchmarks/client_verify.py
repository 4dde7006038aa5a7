"""Time `appshelf verify --artifacts` on example-registry served over HTTP on 127.0.0.1.

Usage: .venv/bin/python benchmarks/client_verify.py [--runs N]

Builds example-registry into a temporary folder with the server's own base URL, serves
it with a real threaded HTTP server, then runs the real CLI (a subprocess, so start-up
time is included) N times with a fresh client state each time. Prints each run and the
median. A speed target, not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from appshelf.builder import BuildOptions, build_registry

ROOT = Path(__file__).resolve().parent.parent
APPSHELF = Path(sys.executable).parent / "appshelf"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        handler = functools.partial(_Quiet, directory=str(site))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            build_registry(ROOT / "example-registry", site, BuildOptions(base_url=url, environ={}))
            command = [str(APPSHELF), "verify", url, "--allow-dev-key", "--artifacts"]
            print("$ " + " ".join(command))
            times = []
            for run in range(args.runs):
                state = Path(tmp) / f"state-{run}"
                started = time.perf_counter()
                result = subprocess.run(
                    [*command, "--state-dir", str(state)], capture_output=True, text=True
                )
                elapsed = time.perf_counter() - started
                if result.returncode != 0:
                    sys.exit(result.stdout + result.stderr)
                times.append(elapsed)
                print(f"run {run + 1}: {elapsed:.3f}s wall (process start included)")
            print(result.stdout.rstrip())
            print(f"median of {args.runs}: {statistics.median(times):.3f}s")
        finally:
            httpd.shutdown()


if __name__ == "__main__":
    main()
