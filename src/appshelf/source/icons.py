"""App icons are checked by content before they are published.

An SVG icon is a document: opened directly, a browser runs any script in it with the
registry's origin. So an SVG must use only an allowlist of SVG elements and attributes
(docs/spec.md, "Icons"); anything else is refused with the element or attribute named,
and the publisher's bytes are published unchanged when it passes. The check is made on
what an XML parser sees (entities and character references decoded, namespaces
resolved), and the input is restricted to what every XML parser reads the same way:
UTF-8, XML 1.0, no DOCTYPE, no processing instructions.

A PNG icon must decode as a PNG: chunk structure and CRCs, IHDR first with sane
dimensions, image data that inflates to exactly the size IHDR implies, IEND last.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from appshelf.errors import IconError

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
MAX_SVG_DEPTH = 64
MAX_SVG_ELEMENTS = 20_000
MAX_PNG_SIDE = 4096

_FILTER_PRIMITIVES = (
    "feBlend feColorMatrix feComponentTransfer feComposite feConvolveMatrix "
    "feDiffuseLighting feDisplacementMap feDistantLight feDropShadow feFlood feFuncA "
    "feFuncB feFuncG feFuncR feGaussianBlur feMerge feMergeNode feMorphology feOffset "
    "fePointLight feSpecularLighting feSpotLight feTile feTurbulence"
)
SVG_ELEMENTS = frozenset(
    (
        "svg g defs symbol use switch title desc style "
        "path rect circle ellipse line polyline polygon text tspan textPath "
        "linearGradient radialGradient stop clipPath mask pattern marker filter "
        + _FILTER_PRIMITIVES
    ).split()
)
_PRESENTATION = (
    "alignment-baseline baseline-shift clip clip-path clip-rule color "
    "color-interpolation color-interpolation-filters color-rendering cursor direction "
    "display dominant-baseline enable-background fill fill-opacity fill-rule filter "
    "flood-color flood-opacity font font-family font-size font-size-adjust font-stretch "
    "font-style font-variant font-weight image-rendering isolation letter-spacing "
    "lighting-color marker marker-end marker-mid marker-start mask mask-type "
    "mix-blend-mode opacity overflow paint-order pointer-events shape-rendering "
    "stop-color stop-opacity stroke stroke-dasharray stroke-dashoffset stroke-linecap "
    "stroke-linejoin stroke-miterlimit stroke-opacity stroke-width text-anchor "
    "text-decoration text-rendering transform transform-origin unicode-bidi "
    "vector-effect visibility word-spacing writing-mode"
)
_GEOMETRY = (
    "id class style lang tabindex role focusable version baseProfile viewBox "
    "preserveAspectRatio width height x y x1 y1 x2 y2 cx cy r rx ry fx fy fr d points "
    "pathLength dx dy rotate textLength lengthAdjust startOffset method spacing side "
    "href gradientUnits gradientTransform spreadMethod offset clipPathUnits maskUnits "
    "maskContentUnits patternUnits patternContentUnits patternTransform markerUnits "
    "markerWidth markerHeight refX refY orient type media"
)
_FILTER_ATTRIBUTES = (
    "filterUnits primitiveUnits in in2 result stdDeviation mode values operator k1 k2 "
    "k3 k4 order kernelMatrix divisor bias targetX targetY edgeMode preserveAlpha "
    "surfaceScale diffuseConstant specularConstant specularExponent kernelUnitLength "
    "scale xChannelSelector yChannelSelector radius baseFrequency numOctaves seed "
    "stitchTiles tableValues slope intercept amplitude exponent azimuth elevation z "
    "pointsAtX pointsAtY pointsAtZ limitingConeAngle"
)
SVG_ATTRIBUTES = frozenset(f"{_PRESENTATION} {_GEOMETRY} {_FILTER_ATTRIBUTES}".split())
_NAMESPACED_ATTRIBUTES = frozenset(
    {f"{{{XLINK_NS}}}href", f"{{{XML_NS}}}space", f"{{{XML_NS}}}lang"}
)
_DATA_OR_ARIA = re.compile(r"(?:aria|data)-[a-z0-9-]{1,64}")
# The CSS functions a value may call: colours, arithmetic, transforms, filter effects.
# None of them loads anything; url() is allowed only as a fragment (checked apart).
_CSS_FUNCTION_NAMES = (
    "url rgb rgba hsl hsla hwb lab lch oklab oklch color calc min max clamp var "
    "matrix translate translatex translatey scale scalex scaley rotate skewx skewy "
    "blur brightness contrast drop-shadow grayscale hue-rotate invert opacity saturate "
    "sepia cubic-bezier"
)
CSS_FUNCTIONS = frozenset(_CSS_FUNCTION_NAMES.split())
_FRAGMENT = re.compile(r"#[\w.:-]{1,256}")
_FUNCTION = re.compile(r"([A-Za-z_-][\w-]*)\s*\(")
_URL = re.compile(r"url\s*\(", re.IGNORECASE)
_FRAGMENT_URL = re.compile(r"""url\s*\(\s*(["']?)#[\w.:-]{1,256}\1\s*\)""", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_RULE = re.compile(r"\s*([^{}]+)\{([^{}]*)\}")
_CSS_DECLARATION = re.compile(r"\s*(-{0,2}[A-Za-z][\w-]*)\s*:(.*)", re.DOTALL)
_ANIMATION = frozenset({"animate", "animateMotion", "animateTransform", "set", "discard"})


def check_svg(data: bytes) -> None:
    """Refuse an SVG icon unless it is well-formed UTF-8 XML 1.0 using only allowed
    elements and attributes (see the module docstring)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IconError(f"not UTF-8 (byte {exc.start}); SVG icons must be UTF-8") from None
    checker = _SvgChecker()
    parser = DefusedXMLParser(target=checker, forbid_dtd=True)
    checker.expat = parser.parser
    parser.parser.XmlDeclHandler = checker.xml_declaration
    try:
        parser.feed(data)
        parser.close()
    except DefusedXmlException:
        raise IconError(
            "a DOCTYPE is not allowed (nor the entities it could declare): remove it"
        ) from None
    except ParseError as exc:
        raise IconError(f"not well-formed XML ({exc})") from None
    if checker.count == 0:
        raise IconError("no <svg> element")


class _SvgChecker:
    """The parser's target: checks each element and attribute as it is parsed."""

    def __init__(self) -> None:
        self.expat: object = None
        self.stack: list[str] = []
        self.count = 0
        self.css: list[str] | None = None  # text of the <style> being read

    def _where(self) -> str:
        line = getattr(self.expat, "CurrentLineNumber", None)
        return f"line {line}: " if line is not None else ""

    def refuse(self, message: str) -> IconError:
        return IconError(self._where() + message)

    def xml_declaration(self, version: str | None, encoding: str | None, _: int) -> None:
        if version != "1.0":
            raise self.refuse(f"XML version {version!r}: use 1.0")
        if encoding is not None and encoding.lower() not in ("utf-8", "utf8"):
            raise self.refuse(f"encoding {encoding!r}: SVG icons must be UTF-8")

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        self.count += 1
        if len(self.stack) >= MAX_SVG_DEPTH:
            raise self.refuse(f"elements nested deeper than {MAX_SVG_DEPTH}")
        if self.count > MAX_SVG_ELEMENTS:
            raise self.refuse(f"more than {MAX_SVG_ELEMENTS} elements")
        if self.css is not None:
            raise self.refuse("<style> may contain only CSS text")
        name = self._element(tag)
        for key, value in attrib.items():
            _check_attribute(key, value, name, self)
        self.stack.append(name)
        if name == "style":
            self.css = []

    def _element(self, tag: str) -> str:
        namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        if not namespace:
            raise self.refuse(f'element <{local}> has no namespace: add xmlns="{SVG_NS}"')
        if namespace != SVG_NS:
            raise self.refuse(f"element <{{{namespace}}}{local}> is not an SVG element")
        if not self.stack and local != "svg":
            raise self.refuse(f"the root element is <{local}>, not <svg>")
        if local not in SVG_ELEMENTS:
            raise self.refuse(f"element <{local}> is not allowed{_hint(local)}")
        return local

    def end(self, tag: str) -> None:
        name = self.stack.pop()
        if name == "style" and self.css is not None:
            text, self.css = "".join(self.css), None
            check_stylesheet(text, self)

    def data(self, text: str) -> None:
        if self.css is not None:
            self.css.append(text)

    def comment(self, text: str) -> None:
        """Comments are inert; allowed."""

    def pi(self, target: str, text: str) -> None:
        raise self.refuse(f"processing instruction <?{target} ...?> is not allowed")

    def close(self) -> None:
        return None


def _hint(local: str) -> str:
    if local in _ANIMATION:
        return " (no animation elements)"
    if local == "script":
        return " (no scripts)"
    if local in ("foreignObject", "image", "feImage", "a", "iframe"):
        return " (nothing that embeds, loads or links)"
    return ""


def _check_attribute(key: str, value: str, element: str, checker: _SvgChecker) -> None:
    shown = key.replace(f"{{{XLINK_NS}}}", "xlink:").replace(f"{{{XML_NS}}}", "xml:")
    allowed = (
        key in _NAMESPACED_ATTRIBUTES
        or (not key.startswith("{") and key in SVG_ATTRIBUTES)
        or _DATA_OR_ARIA.fullmatch(key) is not None
    )
    if not allowed:
        why = " (no event handlers)" if key.lower().startswith("on") else ""
        raise checker.refuse(f"attribute {shown} on <{element}> is not allowed{why}")
    if key in ("href", f"{{{XLINK_NS}}}href"):
        if not _FRAGMENT.fullmatch(value):
            raise checker.refuse(
                f"{shown} on <{element}> is {value[:60]!r}: only local #id references"
            )
    elif key == "style":
        check_declarations(value, f"style on <{element}>", checker)
    else:
        check_value(value, f"{shown} on <{element}>", checker)


def check_value(value: str, where: str, checker: _SvgChecker) -> None:
    """An attribute or CSS value: no escapes, only the allowed functions, and url()
    only as a local #id reference."""
    if "\\" in value:
        raise checker.refuse(f"{where}: backslash escapes are not allowed")
    for match in _FUNCTION.finditer(value):
        if match.group(1).lower() not in CSS_FUNCTIONS:
            raise checker.refuse(f"{where}: function {match.group(1)}() is not allowed")
    urls = len(_URL.findall(value))
    if urls and urls != len(_FRAGMENT_URL.findall(value)):
        raise checker.refuse(f"{where}: url() may only name a local #id")


def check_declarations(text: str, where: str, checker: _SvgChecker) -> None:
    """`property: value; ...` (a style attribute or one rule's body)."""
    for declaration in _strip_comments(text, where, checker).split(";"):
        if not declaration.strip():
            continue
        match = _CSS_DECLARATION.fullmatch(declaration)
        if match is None:
            raise checker.refuse(f"{where}: {declaration.strip()[:60]!r} is not a declaration")
        if "@" in match.group(2):
            raise checker.refuse(f"{where}: '@' is not allowed")
        check_value(match.group(2), f"{where}: {match.group(1)}", checker)


def check_stylesheet(text: str, checker: _SvgChecker) -> None:
    """A <style> element: plain rules only, no at-rules (@import, @font-face...)."""
    css = _strip_comments(text, "<style>", checker)
    if "@" in css:
        raise checker.refuse("<style>: at-rules (@import, @font-face...) are not allowed")
    if "\\" in css:
        raise checker.refuse("<style>: backslash escapes are not allowed")
    end = 0
    for match in _CSS_RULE.finditer(css):
        if css[end : match.start()].strip():
            break
        check_declarations(match.group(2), f"<style> rule {match.group(1).strip()[:40]!r}", checker)
        end = match.end()
    if css[end:].strip():
        raise checker.refuse(f"<style>: cannot read CSS at {css[end:].strip()[:40]!r}")


def _strip_comments(text: str, where: str, checker: _SvgChecker) -> str:
    css = _CSS_COMMENT.sub(" ", text)
    if "/*" in css:
        raise checker.refuse(f"{where}: unterminated CSS comment")
    return css


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# colour type -> (samples per pixel, allowed bit depths)
_PNG_COLOURS = {
    0: (1, (1, 2, 4, 8, 16)),
    2: (3, (8, 16)),
    3: (1, (1, 2, 4, 8)),
    4: (2, (8, 16)),
    6: (4, (8, 16)),
}
# Adam7 passes: (first column, first row, column step, row step)
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def check_png(data: bytes) -> None:
    """Refuse a PNG icon unless it decodes as a PNG (see the module docstring)."""
    if not data.startswith(_PNG_SIGNATURE):
        raise IconError("not a PNG file (no PNG signature)")
    chunks = list(_png_chunks(data))
    names = _check_chunk_order(chunks)
    width, height, depth, colour, interlace = _png_header(chunks[0][1])
    idat = _image_chunks(names, palette=colour == 3)
    rows = list(_png_rows(width, height, depth * _PNG_COLOURS[colour][0], interlace))
    _inflate_rows(b"".join(chunks[i][1] for i in idat), rows)


def _check_chunk_order(chunks: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The chunk names, once IHDR is known to come first and an empty IEND last, each
    once, with no critical chunk this check does not know."""
    if not chunks or chunks[0][0] != b"IHDR":
        raise IconError("the first chunk is not IHDR")
    if chunks[-1][0] != b"IEND" or chunks[-1][1]:
        raise IconError("the last chunk is not an empty IEND")
    names = [name for name, _ in chunks]
    if names.count(b"IHDR") != 1 or names.count(b"IEND") != 1:
        raise IconError("IHDR and IEND must each appear once")
    for name in sorted(set(names) - {b"IHDR", b"PLTE", b"IDAT", b"IEND"}):
        if name[0:1].isupper():
            raise IconError(f"unknown critical chunk {name.decode('ascii')}")
    return names


def _image_chunks(names: list[bytes], palette: bool) -> list[int]:
    """The indices of the IDAT chunks: consecutive, with a PLTE before them exactly
    when the image is a palette image."""
    idat = [i for i, name in enumerate(names) if name == b"IDAT"]
    if not idat or idat != list(range(idat[0], idat[-1] + 1)):
        raise IconError("IDAT chunks missing or not consecutive")
    if palette != (b"PLTE" in names[: idat[0]]):
        raise IconError("a palette image needs PLTE before IDAT (and only it may have one)")
    return idat


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    offset = len(_PNG_SIGNATURE)
    while offset < len(data):
        if len(data) - offset < 12:
            raise IconError(f"truncated chunk at byte {offset}")
        length, name = struct.unpack_from(">I4s", data, offset)
        end = offset + 8 + length
        if length > 0x7FFFFFFF or end + 4 > len(data):
            raise IconError(f"chunk at byte {offset} runs past the end of the file")
        if not re.fullmatch(rb"[A-Za-z]{4}", name):
            raise IconError(f"invalid chunk name at byte {offset}")
        body = data[offset + 8 : end]
        (crc,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(name + body) != crc:
            raise IconError(f"bad CRC in chunk {name.decode('ascii')} at byte {offset}")
        yield name, body
        offset = end + 4
        if name == b"IEND" and offset != len(data):
            raise IconError(f"{len(data) - offset} bytes after IEND")


def _png_header(body: bytes) -> tuple[int, int, int, int, int]:
    if len(body) != 13:
        raise IconError("IHDR is not 13 bytes")
    width, height, depth, colour, method, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if not (1 <= width <= MAX_PNG_SIDE and 1 <= height <= MAX_PNG_SIDE):
        raise IconError(f"{width}x{height} pixels; icons are at most {MAX_PNG_SIDE}x{MAX_PNG_SIDE}")
    if colour not in _PNG_COLOURS or depth not in _PNG_COLOURS[colour][1]:
        raise IconError(f"invalid colour type {colour} with bit depth {depth}")
    if method != 0 or filtering != 0 or interlace not in (0, 1):
        raise IconError("invalid compression, filter or interlace method")
    return width, height, depth, colour, interlace


def _png_rows(width: int, height: int, bits: int, interlace: int) -> Iterator[int]:
    """The byte length of each filtered scanline (filter byte included), in order."""
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    for x0, y0, dx, dy in passes:
        pass_width = (width - x0 + dx - 1) // dx
        pass_height = (height - y0 + dy - 1) // dy
        if pass_width > 0 and pass_height > 0:
            for _ in range(pass_height):
                yield 1 + (pass_width * bits + 7) // 8


def _inflate_rows(compressed: bytes, rows: list[int]) -> None:
    """Inflate the image data in bounded pieces; it must be exactly `rows` long, each
    row starting with a valid filter type (0-4)."""
    expected = sum(rows)
    inflater = zlib.decompressobj()
    starts = iter(_row_starts(rows))
    next_start = next(starts, None)
    produced = 0
    pending = compressed
    try:
        while pending or not inflater.eof:
            piece = inflater.decompress(pending, 1 << 20)
            pending = inflater.unconsumed_tail
            if not piece and not pending:
                break
            while next_start is not None and next_start < produced + len(piece):
                if piece[next_start - produced] > 4:
                    raise IconError(f"invalid filter type in the image data at {next_start}")
                next_start = next(starts, None)
            produced += len(piece)
            if produced > expected:
                raise IconError("image data inflates to more than its dimensions need")
    except zlib.error as exc:
        raise IconError(f"image data does not inflate ({exc})") from None
    if not inflater.eof or inflater.unused_data or produced != expected:
        raise IconError(f"image data inflates to {produced} bytes, not {expected}")


def _row_starts(rows: list[int]) -> Iterator[int]:
    offset = 0
    for length in rows:
        yield offset
        offset += length
