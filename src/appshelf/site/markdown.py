"""README rendering: CommonMark with raw HTML off and only harmless link targets.

A README is written by an app author, not by the registry's owner, so it is hostile
input: no HTML passes through, and a link or image may only point at http(s),
mailto, or a relative path. Anything else (javascript:, data:, vbscript:, file:...)
is left as plain text by markdown-it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
# Characters browsers drop from URLs before reading the scheme ("java\tscript:").
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")


def safe_link(url: str) -> bool:
    """True for http(s), mailto and scheme-less (relative or #fragment) targets."""
    stripped = _INVISIBLE.sub("", url)
    match = _SCHEME.match(stripped)
    if match is None:
        # "//host/x" is protocol-relative: fine. A colon before any slash would be a
        # scheme a browser might still honour; reject it.
        head = stripped.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        return ":" not in head
    return match.group(1).lower() in _SAFE_SCHEMES


class _SafeMarkdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        return safe_link(url)


def _link_open(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    token = tokens[idx]
    href = str(token.attrGet("href") or "")
    if _SCHEME.match(href) or href.startswith("//"):
        token.attrSet("rel", "nofollow ugc noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


def _image(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    tokens[idx].attrSet("loading", "lazy")
    tokens[idx].attrSet("referrerpolicy", "no-referrer")
    return renderer.image(tokens, idx, options, env)


def _heading(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    # The page owns <h1> (the app's name): README headings move one level down.
    token = tokens[idx]
    level = int(token.tag[1:])
    token.tag = f"h{min(level + 1, 6)}"
    return renderer.renderToken(tokens, idx, options, env)


@cache
def _parser() -> MarkdownIt:
    md = _SafeMarkdown("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("image", _image)
    md.add_render_rule("heading_open", _heading)
    md.add_render_rule("heading_close", _heading)
    return md


def render_markdown(text: str) -> str:
    """HTML for a README; safe to insert into a page unescaped."""
    env: dict[str, Any] = {}
    return str(_parser().render(text, env))
