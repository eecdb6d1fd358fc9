"""Find the embedded resources and the hyperlinks of HTML pages, and what stylesheets use.

Page requisites are what a browser loads to show a page: stylesheets, scripts,
images (``src`` and ``srcset``), media sources, icons, and everything a
stylesheet pulls in with ``url()`` or ``@import``, in ``<style>`` elements and
``style`` attributes too. Hyperlinks to other pages are not requisites.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

from lxml import etree

# lxml's plain HTML parser: lxml.html's would call back into Python to choose a
# class for every element, a third of the cost of walking a page.
_PARSER = etree.HTMLParser(encoding="utf-8", remove_comments=True)

# rel values of <link> whose href a browser loads to render the page.
_REQUISITE_RELS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload",
                   "modulepreload", "manifest", "mask-icon"}
_SRC_TAGS = {"img", "script", "input", "source", "video", "audio", "track", "embed", "iframe",
             "frame"}
_CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"\s]*))\s*\)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
# A path from the root, or an absolute http(s) URL, with no dot segments,
# backslashes, parameters, fragment or empty query: urljoin would give the base's
# origin followed by the path, or the URL as it is.
_PLAIN_PATH = re.compile(r"/(?!/)[^\\#;\s]*")
_PLAIN_URL = re.compile(r"https?://[^/?#;\\\s@\[\]]+(?:[/?][^\\#;\s]*)?")


def css_links(css: str, base: str) -> list[str]:
    """Absolute URLs of everything a stylesheet imports or references."""
    return _absolute(_css_references(css), base)


@dataclass(frozen=True)
class PageLinks:
    """What an HTML page points at: what it needs to render, and where it leads."""

    requisites: list[str]
    outlinks: list[str]


def html_links(html: str, base: str) -> PageLinks:
    """Absolute URLs of a page's requisites and of its hyperlinks (``a``, ``area``)."""
    parser = _RequisiteParser()
    parser.feed(html)
    if parser.base_href:
        base = urljoin(base, parser.base_href)
    return PageLinks(_absolute(parser.found, base), _absolute(parser.outlinks, base))


def html_requisites(html: str, base: str) -> list[str]:
    """Absolute URLs of the page requisites of an HTML document, in document order."""
    return html_links(html, base).requisites


def _css_references(css: str) -> list[str]:
    """The URLs a piece of CSS names, as written, imports first."""
    css = _CSS_COMMENT.sub("", css)
    return [next(group for group in match.groups() if group is not None)
            for pattern in (_CSS_IMPORT, _CSS_URL) for match in pattern.finditer(css)]


def _srcset(value: str) -> list[str]:
    """URLs of a srcset, parsed as the HTML standard does: a URL may itself hold commas."""
    urls = []
    pos, end = 0, len(value)
    while pos < end:
        while pos < end and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < end and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:  # skip the descriptors, up to a comma outside parentheses
            depth = 0
            while pos < end and not (value[pos] == "," and depth == 0):
                depth += {"(": 1, ")": -1 if depth else 0}.get(value[pos], 0)
                pos += 1
        if url:
            urls.append(url)
    return urls


def _absolute(urls: list[str], base: str) -> list[str]:
    seen: dict[str, None] = {}
    parts = urlsplit(base)
    origin = f"{parts.scheme}://{parts.netloc}"
    for raw in urls:
        raw = raw.strip()
        if not raw or raw.startswith(("data:", "javascript:", "about:", "#", "blob:")):
            continue
        plain = "/." not in raw and not raw.endswith("?")
        if plain and _PLAIN_PATH.fullmatch(raw):
            url = origin + raw  # what urljoin gives, at a tenth of its cost
        elif plain and _PLAIN_URL.fullmatch(raw):
            url = raw
        else:
            try:
                url = urldefrag(urljoin(base, raw)).url
            except ValueError:  # such as an unclosed [ in an IPv6 host: not a link to follow
                continue
        if url.startswith(("http://", "https://")):
            seen.setdefault(url, None)
    return list(seen)


class _RequisiteParser:
    """Walks an lxml tree (fast, and as forgiving as a browser) collecting links."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.outlinks: list[str] = []
        self.base_href: str | None = None

    def feed(self, html: str) -> None:
        if not html.strip():
            return
        try:
            root = etree.fromstring(html.encode("utf-8"), parser=_PARSER)
        except (etree.ParserError, etree.XMLSyntaxError, ValueError):
            return
        if root is None:
            return
        # What follows </html> libxml2 puts in a second root element; browsers render it.
        for top in (*root.itersiblings(preceding=True), root, *root.itersiblings()):
            for element in top.iter():
                if isinstance(element.tag, str):
                    self._element(element.tag.lower(), element)

    def _element(self, tag: str, element: Any) -> None:
        values = element.attrib
        if tag in ("a", "area") and values.get("href"):
            self.outlinks.append(values["href"])
        elif tag == "base" and values.get("href") and self.base_href is None:
            self.base_href = values["href"]
        elif tag == "link":
            rels = set(values.get("rel", "").lower().split())
            if rels & _REQUISITE_RELS and values.get("href"):
                self.found.append(values["href"])
        elif tag in _SRC_TAGS:
            is_image_button = tag != "input" or values.get("type", "").lower() == "image"
            if is_image_button and values.get("src"):
                self.found.append(values["src"])
        elif tag == "object" and values.get("data"):
            self.found.append(values["data"])
        elif tag == "style" and element.text:
            # Inline CSS is relative to the page: resolved later against the same base.
            self.found.extend(_css_references(element.text))
        if tag == "video" and values.get("poster"):
            self.found.append(values["poster"])
        if values.get("srcset"):
            self.found.extend(_srcset(values["srcset"]))
        if tag == "body" and values.get("background"):
            self.found.append(values["background"])
        if values.get("style"):
            self.found.extend(_css_references(values["style"]))
