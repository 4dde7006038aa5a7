"""The small page left at `/apps/<key>/<version>/`: it sends the browser on to the
version's section of the app page (`../index.html#v-<version>`).

Written with plain string formatting, not Jinja: a registry has one per version, and a
Jinja render of a whole page per version was the largest cost of a cold site build. It
has no script (so its own CSP can forbid them) and works without JavaScript: a
`<meta http-equiv="refresh">`, a canonical link to the app page, and a visible link.
"""

from __future__ import annotations

from html import escape

# Stricter than the pages' own (templates/base.html): nothing but the stylesheet loads.
STUB_CSP = "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta http-equiv="refresh" content="0; url='{href}'">
<title>{app} {version} · {registry}</title>
<link rel="canonical" href="{canonical}">
<link rel="stylesheet" href="{css}">
</head>
<body>
<main class="wrap">
<p>{app} {version} is described on the app page:
<a href="{href}" id="version-link">{app} {version}</a>.</p>
</main>
</body>
</html>
"""


def version_stub(
    *, registry: str, app: str, version: str, anchor: str, canonical: str, css: str
) -> bytes:
    """The page's bytes; every value is escaped for HTML (app names are the author's).

    Args:
        registry: The registry's name, for the title.
        app: The app's display name.
        version: The version, as written.
        anchor: The id of the version's section on the app page.
        canonical: The app page's absolute URL.
        css: The site stylesheet's URL relative to this page.
    """
    return _PAGE.format(
        csp=STUB_CSP,  # ours: no character that needs escaping in a "..." attribute
        href=escape(f"../index.html#{anchor}"),
        app=escape(app),
        version=escape(version),
        registry=escape(registry),
        canonical=escape(canonical),
        css=escape(css),
    ).encode("utf-8")
