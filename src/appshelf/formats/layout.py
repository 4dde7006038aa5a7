"""Names in a published registry that every layer must agree on (pure: no I/O)."""

from __future__ import annotations

from typing import Final

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
