"""Page weight of the browse site: bytes of HTML + CSS + JS per page, raw and gzipped.

    .venv/bin/python benchmarks/site_weight.py [SOURCE]    (default: example-registry)

Counts what a browser downloads to show the page (icons and index.json excluded, as
the search index is fetched only when someone searches).
"""

from __future__ import annotations

import gzip
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from appshelf.builder import BuildOptions, build_registry
from appshelf.site import site_generator

PAGES = ["index.html", "apps/kv-store/index.html", "apps/kv-store/1.1.1/index.html"]
ASSET = re.compile(r'<(?:script|link rel="stylesheet")[^>]*?(?:src|href)="([^"]+)"')


def weigh(root: Path, page: str) -> tuple[int, int, list[str]]:
    files = [page]
    html = (root / page).read_text(encoding="utf-8")
    for ref in ASSET.findall(html):
        if ref.startswith("/__appshelf__/"):
            continue
        path = urlsplit(urljoin("http://x/" + page, ref)).path.lstrip("/")
        files.append(path)
    raw = sum((root / f).stat().st_size for f in files)
    zipped = sum(len(gzip.compress((root / f).read_bytes(), 9)) for f in files)
    return raw, zipped, files


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "example-registry")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "site"
        build_registry(source, out, BuildOptions(generators=(site_generator(),), environ={}))
        print(f"{'page':36} {'bytes':>8} {'gzip':>8}  files")
        for page in PAGES:
            if (out / page).is_file():
                raw, zipped, files = weigh(out, page)
                print(f"{page:36} {raw:8d} {zipped:8d}  {' + '.join(files)}")


if __name__ == "__main__":
    main()
