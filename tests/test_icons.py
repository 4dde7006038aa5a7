"""Icons are checked by content at build time: SVGs by an allowlist of elements and
attributes, PNGs by decoding their structure. Each refused icon fails the build with
the file and the offending element or attribute named, and nothing is written."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from test_source_errors import run_build, write

ICON = "apps/hello-world/icon.svg"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'

# (name, icon text, what the error must say): every way the old denylist was bypassed,
# and the other active or loading content the allowlist keeps out.
BYPASSES = [
    (
        "namespaced script",
        '<svg xmlns="http://www.w3.org/2000/svg"><x:script xmlns:x="http://www.w3.org/2000/svg">'
        "alert(1)</x:script></svg>",
        "element <script> is not allowed",
    ),
    (
        "DOCTYPE entity",
        '<!DOCTYPE svg [<!ENTITY s "&#60;script>alert(1)&#60;/script>">]>'
        '<svg xmlns="http://www.w3.org/2000/svg">&s;</svg>',
        "a DOCTYPE is not allowed",
    ),
    (
        "entity-encoded javascript: href",
        SVG + '<use href="&#106;avascript:alert(1)"/></svg>',
        "href on <use> is 'javascript:alert(1)': only local #id references",
    ),
    (
        "entity-encoded javascript: link",
        SVG + '<a href="&#106;avascript:alert(1)"><rect width="9" height="9"/></a></svg>',
        "element <a> is not allowed",
    ),
    (
        "animate of href",
        SVG + '<use href="#r"><animate attributeName="href" to="javascript:alert(1)"/></use></svg>',
        "element <animate> is not allowed (no animation elements)",
    ),
    (
        "set of href",
        SVG + '<set attributeName="href" to="javascript:alert(1)"/></svg>',
        "element <set> is not allowed (no animation elements)",
    ),
    (
        "foreignObject",
        SVG + '<foreignObject><p xmlns="http://www.w3.org/1999/xhtml">x</p></foreignObject></svg>',
        "element <foreignObject> is not allowed",
    ),
    (
        "XHTML script",
        SVG + '<h:script xmlns:h="http://www.w3.org/1999/xhtml">alert(1)</h:script></svg>',
        "element <{http://www.w3.org/1999/xhtml}script> is not an SVG element",
    ),
    (
        "event handler",
        '<svg xmlns="http://www.w3.org/2000/svg" OnLoad="alert(1)"/>',
        "attribute OnLoad on <svg> is not allowed (no event handlers)",
    ),
    (
        "external xlink:href",
        SVG + '<use xlink:href="https://evil.example/x.svg#a"/></svg>',
        "xlink:href on <use> is 'https://evil.example/x.svg#a': only local #id references",
    ),
    (
        "style attribute url()",
        SVG + '<rect style="fill: url(https://evil.example/t)" width="9" height="9"/></svg>',
        "style on <rect>: fill: url() may only name a local #id",
    ),
    (
        "presentation attribute url()",
        SVG + '<rect fill="url(//evil.example/t)" width="9" height="9"/></svg>',
        "fill on <rect>: url() may only name a local #id",
    ),
    (
        "style element @import",
        SVG + "<style>@import url(https://evil.example/x.css);</style></svg>",
        "<style>: at-rules (@import, @font-face...) are not allowed",
    ),
    (
        "style element url()",
        SVG + "<style>rect { fill: url(https://evil.example/t) }</style></svg>",
        "<style> rule 'rect': fill: url() may only name a local #id",
    ),
    (
        "CSS escape spelling url",
        SVG + "<style>rect { fill: u\\72l(//evil.example/t) }</style></svg>",
        "<style>: backslash escapes are not allowed",
    ),
    (
        "image-set()",
        SVG + "<rect style=\"fill: image-set('//evil.example/t' 1x)\"/></svg>",
        "function image-set() is not allowed",
    ),
    (
        "xml-stylesheet",
        '<?xml-stylesheet href="https://evil.example/x.xsl"?>' + SVG + "</svg>",
        "processing instruction <?xml-stylesheet ...?> is not allowed",
    ),
    (
        "image element",
        SVG + '<image href="data:image/svg+xml,&lt;svg/&gt;"/></svg>',
        "element <image> is not allowed",
    ),
    (
        "no SVG namespace",
        "<svg><script>alert(1)</script></svg>",
        "element <svg> has no namespace",
    ),
    ("not XML", SVG + "<rect>", "not well-formed XML"),
    (
        "too deep",
        SVG + "<g>" * 70 + "</g>" * 70 + "</svg>",
        "elements nested deeper than 64",
    ),
    (
        "Latin-1",
        '<?xml version="1.0" encoding="ISO-8859-1"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        "encoding 'ISO-8859-1': SVG icons must be UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("icon", "message"), [b[1:] for b in BYPASSES], ids=[b[0] for b in BYPASSES]
)
def test_active_or_loading_svg_is_refused(
    example_source: Path, tmp_path: Path, icon: str, message: str
) -> None:
    write(example_source / ICON, icon)
    out = tmp_path / "out"
    code, output = run_build(example_source, out)
    assert code == 1
    assert "Traceback" not in output
    assert f"{ICON}: SVG icon refused: " in output and message in output, output
    assert not out.exists()


RICH_SVG = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- an icon as an editor exports it, mentioning javascript: in its text -->
{SVG}
  <title>Never follow javascript: links</title>
  <defs>
    <linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#2563EB"/><stop offset="1" stop-color="rgb(37, 99, 235)"/>
    </linearGradient>
    <filter id="f"><feGaussianBlur stdDeviation="1"/></filter>
    <clipPath id="c"><circle cx="32" cy="32" r="30"/></clipPath>
    <style type="text/css"><![CDATA[ .a {{ fill: url(#g); stroke: #fff }} /* c */ ]]></style>
    <symbol id="s" viewBox="0 0 10 10"><path d="M0 0L10 10"/></symbol>
  </defs>
  <g clip-path="url(#c)" transform="translate(1 2) rotate(5)" style="opacity:.9">
    <rect class="a" width="64" height="64" rx="14" filter="url('#f')"/>
    <use xlink:href="#s" width="10" height="10"/><use href="#s" x="20"/>
    <text x="32" y="43" font-family="'Open Sans', sans-serif" xml:space="preserve">H</text>
  </g>
</svg>
"""


def test_normal_svg_is_published_byte_for_byte(example_source: Path, tmp_path: Path) -> None:
    """Allowed content passes, text is inert (the old filter refused this icon for the
    words in its title), and the publisher's bytes are published unchanged."""
    write(example_source / ICON, RICH_SVG)
    out = tmp_path / "out"
    code, output = run_build(example_source, out)
    assert code == 0, output
    assert (out / ICON).read_bytes() == RICH_SVG.encode()
    assert (out / "apps/kv-store/icon.png").read_bytes() == (
        example_source / "apps/kv-store/icon.png"
    ).read_bytes()


def _chunk(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + name + body + struct.pack(">I", zlib.crc32(name + body))


def _png(width: int = 2, height: int = 2, raw: bytes | None = None, tail: bytes = b"") -> bytes:
    """An 8-bit RGB PNG; `raw` replaces the filtered scanlines."""
    if raw is None:
        raw = b"".join(b"\0" + b"\xff" * 3 * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
        + tail
    )


def _bad_crc(data: bytes) -> bytes:
    return data[:29] + bytes([data[29] ^ 1]) + data[30:]  # the last byte of IHDR's CRC


PNGS = [
    ("magic then HTML", b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>", "runs past"),
    ("HTML after IEND", _png(tail=b"<script>alert(1)</script>"), "25 bytes after IEND"),
    ("bad CRC", _bad_crc(_png()), "bad CRC in chunk IHDR"),
    ("too large", _png(5000, 1, raw=b"\0" * 15001), "5000x1 pixels; icons are at most 4096x4096"),
    ("short image data", _png(raw=b"\0" * 5), "inflates to 5 bytes, not 14"),
    ("inflation bomb", _png(raw=b"\0" * 50_000_000), "inflates to more than its dimensions need"),
    ("bad filter type", _png(raw=(b"\x09" + b"\xff" * 6) * 2), "invalid filter type"),
    ("no signature", b"GIF89a", "no PNG signature"),
]


@pytest.mark.parametrize(("data", "message"), [p[1:] for p in PNGS], ids=[p[0] for p in PNGS])
def test_malformed_png_is_refused(
    example_source: Path, tmp_path: Path, data: bytes, message: str
) -> None:
    icon = example_source / "apps/kv-store/icon.png"
    write(icon, data)
    out = tmp_path / "out"
    code, output = run_build(example_source, out)
    assert code == 1 and "Traceback" not in output
    assert "apps/kv-store/icon.png: PNG icon refused: " in output and message in output, output
    assert not out.exists()


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def test_valid_png_of_any_layout_is_accepted(example_source: Path, tmp_path: Path) -> None:
    """A palette PNG, interlaced, with an ancillary chunk: decoded, not just sniffed."""
    width, height = 9, 5
    raw = b""  # the seven Adam7 passes, one byte per pixel, each row filter type 0
    for x0, y0, dx, dy in ADAM7:
        columns = (width - x0 + dx - 1) // dx
        lines = (height - y0 + dy - 1) // dy
        if columns and lines:
            raw += (b"\0" + b"\x01" * columns) * lines
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 1)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"PLTE", b"\0\0\0\xff\xff\xff")
        + _chunk(b"tEXt", b"Comment\0hello")
        + _chunk(b"IDAT", zlib.compress(raw)[:7])
        + _chunk(b"IDAT", zlib.compress(raw)[7:])
        + _chunk(b"IEND", b"")
    )
    write(example_source / "apps/kv-store/icon.png", png)
    code, output = run_build(example_source, tmp_path / "out")
    assert code == 0, output
    assert (tmp_path / "out/apps/kv-store/icon.png").read_bytes() == png
