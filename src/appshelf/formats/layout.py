"""Names in a published registry that every layer must agree on (pure: no I/O)."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

APP_KEY_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
ARTIFACT_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}\Z")
# Names in a version folder that appshelf writes itself, never an artifact's.
RESERVED_ARTIFACT_NAMES: Final = frozenset({"manifest.json", "index.html", "statement.json"})


def url_for(base_url: str, relpath: str) -> str:
    """Absolute URL of an output path; each segment percent-encoded (`+` in versions)."""
    return base_url + "/".join(quote(part, safe="") for part in relpath.split("/"))


def app_dir(key: str) -> str:
    return f"apps/{key}"


def version_dir(key: str, version: str) -> str:
    return f"apps/{key}/{version}"

# File name endings that a browser opening the file from the registry's origin runs as a
# document (HTML, XHTML, SVG, XML with XSLT, MHTML): an artifact with such a name would
# execute script as a page of the registry's origin on GitHub Pages, or anywhere the
# host picks the type from the name. The build refuses them for artifacts it publishes.
ACTIVE_DOCUMENT_SUFFIXES: Final = (
    ".htm",
    ".html",
    ".shtml",
    ".xht",
    ".xhtml",
    ".svg",
    ".svgz",
    ".xml",
    ".xsl",
    ".xslt",
    ".mht",
    ".mhtml",
)


def is_active_document(name: str) -> bool:
    """True when a browser would render a file of this name as a document, not a download."""
    return name.lower().endswith(ACTIVE_DOCUMENT_SUFFIXES)
